"""A network partition for one service: its own network namespace, joined to this host by a
veth pair that a test takes down (the cut) and up again (the heal).

The service inside reaches Kafka and PostgreSQL only through the host's end of the pair:
Kafka is a broker of the test's own listening (and advertising) on that address, PostgreSQL
a relay on it to the session's cluster, which listens on loopback only. Host addresses stay
reachable on the host while the link is down, so only the namespaced service is cut off.

Needs root and ``ip`` (iproute2); ``unavailable()`` says why not, for a clear skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from uuid import uuid4


def _ip(*arguments: str) -> None:
    subprocess.run(["ip", *arguments], check=True, capture_output=True, timeout=30)


def unavailable() -> str | None:
    """Why a partition cannot be made here, or None when it can."""
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is missing: deploy/local/prerequisites.sh installs it"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"yjp{uuid4().hex[:8]}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as error:
        return f"`ip netns add` failed here: {error.stderr.decode(errors='replace').strip()}"
    _ip("netns", "delete", probe)
    return None


@dataclass(frozen=True)
class Partition:
    """A namespace ``name`` at ``inside``, reached from the host at ``outside``."""

    name: str
    host_link: str
    outside: str
    inside: str

    @property
    def launcher(self) -> list[str]:
        """What to put before a command to run it inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> None:
        _ip("link", "set", self.host_link, "down")

    def heal(self) -> None:
        _ip("link", "set", self.host_link, "up")


@contextmanager
def partitionable() -> Iterator[Partition]:
    """A namespace and its veth pair on a free /30 of 10.213.0.0/16, removed afterwards."""
    tag = uuid4().hex[:8]
    name, host_link, inner_link = f"yijian-{tag}", f"yjh{tag}", f"yjn{tag}"
    block = random.randrange(0, 1 << 14) * 4  # a /30: .1 for the host, .2 inside
    outside = f"10.213.{block >> 8}.{(block & 0xFF) + 1}"
    inside = f"10.213.{block >> 8}.{(block & 0xFF) + 2}"
    _ip("netns", "add", name)
    try:
        _ip("link", "add", host_link, "type", "veth", "peer", "name", inner_link)
        _ip("link", "set", inner_link, "netns", name)
        _ip("addr", "add", f"{outside}/30", "dev", host_link)
        _ip("link", "set", host_link, "up")
        inner = ["netns", "exec", name, "ip"]
        _ip(*inner, "addr", "add", f"{inside}/30", "dev", inner_link)
        _ip(*inner, "link", "set", inner_link, "up")
        _ip(*inner, "link", "set", "lo", "up")
        yield Partition(name, host_link, outside, inside)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "delete", host_link)  # takes its peer with it
        _ip("netns", "delete", name)


@dataclass
class TcpRelay:
    """Forwards connections from ``listen`` (host, port) to ``target``, in a thread of its
    own, so a server that listens on loopback only can be reached from the namespace."""

    listen: tuple[str, int]
    target: tuple[str, int]
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None

    def start(self) -> None:
        async def serve() -> asyncio.Server:
            return await asyncio.start_server(self._relay, *self.listen)

        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(serve(), self._loop).result(timeout=10)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            relaying = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in relaying:
                task.cancel()
            await asyncio.gather(*relaying, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers = [writer]
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
            writers.append(upstream_writer)
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass  # the far end went away, or the relay is stopping: either way, hang up
        finally:
            for each in writers:
                each.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        writer.close()  # passes the hang-up on
