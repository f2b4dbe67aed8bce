"""A minimal HTTP/1.1 keep-alive client for loopback load.

A general client (httpx) spends more CPU per request than the servers under test, and on two
cores the load generator's CPU is taken from them: this one sends prepared bytes and reads
back a status line, headers and a Content-Length body, nothing else. It refuses anything but
127.0.0.1, and any response it does not understand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

LOOPBACK = "127.0.0.1"


class ProtocolError(Exception):
    """The server answered in a form this client does not read (e.g. chunked)."""


def post(port: int, path: str, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
    """The bytes of one POST with a JSON body, ready to send again and again."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {LOOPBACK}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def get(port: int, path: str, headers: Mapping[str, str] | None = None) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {LOOPBACK}:{port}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one request and read its whole response: (status, body)."""
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise ProtocolError("chunked responses are not read here")
        if length is None:
            raise ProtocolError("a response without Content-Length")
        body = await self._reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self._writer.close()
