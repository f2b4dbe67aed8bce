"""The whole system served as ``make run`` serves it, on a free loopback port, for tests
that need a real HTTP server (a browser, an API fuzzer)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from services.embedded import System, build_system, create_app
from tests.conftest import make_settings
from yijian.clock import Clock


@dataclass
class LiveServer:
    url: str
    system: System

    def staff_token(self, org_code: str, user: str = "browser-test") -> str:
        return self.system.routing.tokens.issue(user, org_code)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(data_dir: Path, clock: Clock | None = None, **overrides: Any) -> Iterator[LiveServer]:
    """Serve the whole system; ``clock`` (default: the real one) lets a test move time."""
    port = free_port()
    system = build_system(make_settings(data_dir, port=port, **overrides), clock)
    server = uvicorn.Server(
        uvicorn.Config(create_app(system), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    # Waiting for the server to come up, not for time to pass: bounded, then it fails.
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", system)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
