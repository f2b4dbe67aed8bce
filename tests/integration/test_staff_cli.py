"""``yijian staff add-user | list | disable``: accounts made on the command line sign in."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from services.cli import app
from tests.conftest import start_harness, stop_harness
from yijian.clock import FakeClock

SECRET = "test-only-secret-key-of-enough-length-32b"


def run(data_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        list(args),
        input=stdin,
        env={"YIJIAN_DATA_DIR": str(data_dir), "YIJIAN_AUTH_SECRET": SECRET},
    )
    return result.exit_code, result.output


async def sign_in(data_dir: Path, username: str, password: str) -> dict[str, Any]:
    harness = await start_harness(data_dir, FakeClock())
    try:
        login = await harness.client.post(
            "/api/v1/staff/login", json={"username": username, "password": password}
        )
        assert login.status_code == 200, login.text
        user: dict[str, Any] = login.json()["user"]
        return user
    finally:
        await stop_harness(harness)


# Synchronous: the command runs its own event loop, as it does in a terminal.
def test_an_account_added_on_the_command_line_signs_in(tmp_path: Path) -> None:
    code, output = run(
        tmp_path,
        "staff",
        "add-user",
        "--org",
        "620922100",
        "--username",
        "zhang.san",
        "--role",
        "supervisor",
        "--name",
        "张三",
        stdin="a temporary password\n",
    )
    assert code == 0, output
    assert "added zhang.san (supervisor) for 620922100" in output
    code, output = run(tmp_path, "staff", "list")
    assert code == 0
    assert "zhang.san\t张三\t620922100\tsupervisor\tmust-change-password" in output

    for refused_args, stdin in (
        (["--org", "620922100", "--username", "zhang.san", "--role", "staff"], "another password"),
        (["--org", "620922100001001", "--username", "grid", "--role", "staff"], "long password"),
        (["--org", "620922100", "--username", "short", "--role", "staff"], "short"),
        (["--org", "620922100", "--username", "x", "--role", "boss"], "long password"),
    ):
        code, output = run(tmp_path, "staff", "add-user", *refused_args, stdin=stdin)
        assert code != 0, refused_args

    user = asyncio.run(sign_in(tmp_path, "zhang.san", "a temporary password"))
    assert user["must_change_password"] is True
    assert user["display_name"] == "张三"

    code, output = run(tmp_path, "staff", "disable", "zhang.san")
    assert code == 0
    code, output = run(tmp_path, "staff", "list")
    assert "disabled" in output
    assert run(tmp_path, "staff", "disable", "nobody")[0] == 1
