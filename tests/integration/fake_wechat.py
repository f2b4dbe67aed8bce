"""A small fake of WeChat's server API on 127.0.0.1, written from WeChat's documentation.

It is a real HTTP/1.1 server (asyncio streams), so yijian's httpx clients, timeouts and
retries run exactly as against api.weixin.qq.com. It serves:

- ``GET /sns/jscode2session``: ``users`` maps a login code to an openid (each code works
  once, then 40163). Special codes: ``rate-limited`` (45011), ``busy`` (-1), ``blocked``
  (40226), ``stall`` (answers after ``stall_seconds``), ``drop-once-<name>`` (the first
  try loses its connection, the next succeeds); any other code is 40029.
- ``POST /cgi-bin/stable_token``: a new access_token per call, valid for 7200 s.
- ``POST /cgi-bin/message/subscribe/send``: 40001 for an unknown or revoked token, 42001
  for an expired one; otherwise the next of ``send_errcodes`` if any, else it records the
  message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

APPID = "wx0123456789abcdef"
SECRET = "fake-app-secret-0123456789"


@dataclass
class Sent:
    token: str
    body: dict[str, Any]


@dataclass
class FakeWeChat:
    users: dict[str, str] = field(default_factory=dict)
    stall_seconds: float = 2.0
    login_calls: list[dict[str, str]] = field(default_factory=list)
    token_calls: list[dict[str, Any]] = field(default_factory=list)
    messages: list[Sent] = field(default_factory=list)
    send_errcodes: list[int] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)
    always_revoke: bool = False
    _issued: list[str] = field(default_factory=list)
    _used_codes: set[str] = field(default_factory=set)
    _dropped: set[str] = field(default_factory=set)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def revoke_tokens(self) -> None:
        self.revoked.update(self._issued)

    def expire_tokens(self) -> None:
        self.expired.update(self._issued)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(ConnectionError):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, target, _ = head[0].split(" ", 2)
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in head[1:] if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        parts = urlsplit(target)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        if (method, parts.path) == ("GET", "/sns/jscode2session"):
            answer = await self._login(query)
        elif (method, parts.path) == ("POST", "/cgi-bin/stable_token"):
            answer = self._token(json.loads(body))
        elif (method, parts.path) == ("POST", "/cgi-bin/message/subscribe/send"):
            answer = self._send(query.get("access_token", ""), json.loads(body))
        else:
            answer = {"errcode": 404, "errmsg": "no such api"}
        if answer is None:  # lose the connection without a word
            return
        payload = json.dumps(answer).encode()
        # WeChat really labels its JSON text/plain.
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        await writer.drain()

    async def _login(self, query: dict[str, str]) -> dict[str, Any] | None:
        self.login_calls.append(query)
        if query.get("appid") != APPID or query.get("secret") != SECRET:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        if query.get("grant_type") != "authorization_code":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        code = query.get("js_code", "")
        if code == "stall":
            await asyncio.sleep(self.stall_seconds)
        if code.startswith("drop-once-") and code not in self._dropped:
            self._dropped.add(code)
            return None
        special = {"rate-limited": 45011, "busy": -1, "blocked": 40226}
        if code in special:
            return {"errcode": special[code], "errmsg": "refused"}
        openid = self.users.get(code)
        if openid is None:
            return {"errcode": 40029, "errmsg": "invalid code"}
        if code in self._used_codes:
            return {"errcode": 40163, "errmsg": "code been used"}
        self._used_codes.add(code)
        return {"openid": openid, "session_key": f"SESSIONKEY+{code}/=="}

    def _token(self, body: dict[str, Any]) -> dict[str, Any]:
        self.token_calls.append(body)
        if body.get("appid") != APPID or body.get("secret") != SECRET:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        token = f"ACCESS_TOKEN_{len(self._issued) + 1}"
        self._issued.append(token)
        if self.always_revoke:
            self.revoked.add(token)
        return {"access_token": token, "expires_in": 7200}

    def _send(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        if token not in self._issued or token in self.revoked:
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
        if token in self.expired:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        if self.send_errcodes:
            return {"errcode": self.send_errcodes.pop(0), "errmsg": "refused"}
        self.messages.append(Sent(token, body))
        return {"errcode": 0, "errmsg": "ok", "msgid": len(self.messages)}
