"""The long-running processes settle their heap once started (yijian/heap.py); apps built
for tests do not, and cycles made afterwards are still collected.

Each case runs in a child interpreter: freezing the test process's heap would keep every
later test's garbage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from yijian.heap import YOUNG_GENERATION

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import gc, json, sys, weakref
from pathlib import Path
from fastapi.testclient import TestClient
from tests.conftest import make_settings

shape, data = sys.argv[1], Path(sys.argv[2])
if shape == "run":
    from services.embedded import app_from_environment
    app = app_from_environment()
else:
    from services.process import create_service_app
    app = create_service_app("intake", make_settings(data), settle_heap=shape == "serve")

class Node:
    pass

with TestClient(app) as client:
    assert client.get("/healthz").status_code == 200
    frozen, young = gc.get_freeze_count(), gc.get_threshold()[0]
    node = Node()
    node.itself = node
    gone = weakref.ref(node)
    del node
    gc.collect()
print(json.dumps({"frozen": frozen, "young": young, "cycle_collected": gone() is None}))
"""


def child(shape: str, data: Path) -> dict[str, object]:
    env = {
        **os.environ,
        "YIJIAN_DATA_DIR": str(data),
        "YIJIAN_AUTH_SECRET": "test-only-secret-key-of-enough-length-32b",
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, shape, str(data)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("shape", ["serve", "run"])
def test_a_long_running_process_freezes_its_start_up_heap_and_still_collects_cycles(
    tmp_path: Path, shape: str
) -> None:
    settled = child(shape, tmp_path)
    assert isinstance(settled["frozen"], int)
    assert settled["frozen"] > 50_000
    assert settled["young"] == YOUNG_GENERATION
    assert settled["cycle_collected"] is True


def test_an_app_built_for_tests_leaves_the_collector_alone(tmp_path: Path) -> None:
    untouched = child("test", tmp_path)
    assert untouched["frozen"] == 0
    assert untouched["young"] != YOUNG_GENERATION
    assert untouched["cycle_collected"] is True
