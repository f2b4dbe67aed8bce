"""``python -m bench [--quick] [--only SUITE,…]``: run the benchmarks and print one table.

Each suite writes ``bench/results/<suite>.json``; the whole run also writes
``bench/results/summary-<mode>.json``. The exit status is 0 when every suite ran, whether or
not each figure met its target (a miss is a finding, not a crash); 1 when a suite failed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.context import FULL, QUICK, Bench, Mode
from bench.figures import Figure, render_table, write_results

RESULTS = Path(__file__).resolve().parent / "results"
# In this order: the intake suite measures the baselines the embedded suite compares with.
SUITES = ("intake", "embedded", "kafka", "transport", "deadlines", "recovery")
Suite = Callable[[Bench], Awaitable[tuple[list[Figure], dict[str, Any]]]]


def suite_named(name: str) -> Suite:
    module = importlib.import_module(f"bench.{name}")
    run: Suite = module.run
    return run


async def main(mode: Mode, only: list[str], keep: bool) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="yijian-bench-"))
    bench = Bench(mode, QUICK if mode == "quick" else FULL, workdir, RESULTS)
    started, clock = datetime.now(UTC), time.monotonic()
    figures: list[Figure] = []
    failed: list[str] = []
    try:
        for name in only:
            print(f"==> {name}", file=sys.stderr, flush=True)
            suite_started, suite_clock = datetime.now(UTC), time.monotonic()
            try:
                found, details = await suite_named(name)(bench)
            except Exception:
                traceback.print_exc()
                failed.append(name)
                continue
            seconds = time.monotonic() - suite_clock
            write_results(
                RESULTS,
                name,
                mode=mode,
                figures=found,
                details=details,
                started_at=suite_started,
                seconds=seconds,
            )
            print(f"    {name}: {seconds:.0f}s", file=sys.stderr, flush=True)
            figures += found
    finally:
        await asyncio.to_thread(bench.close)
        if keep:
            print(f"logs and data kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - clock
    write_results(
        RESULTS,
        f"summary-{mode}",
        mode=mode,
        figures=figures,
        details={"suites": only, "failed": failed},
        started_at=started,
        seconds=seconds,
    )
    print()
    print(render_table(figures))
    print(f"\n{mode} run: {seconds:.0f}s; results in {RESULTS}/")
    if failed:
        print(f"FAILED suites: {', '.join(failed)} (see the messages above)")
    return 1 if failed else 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, < 3 minutes")
    parser.add_argument("--only", default=",".join(SUITES), help="comma-separated suites")
    parser.add_argument("--keep", action="store_true", help="keep the logs and data folder")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    chosen = [name.strip() for name in arguments.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SUITES))
    if unknown:
        sys.exit(f"unknown suites: {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    mode: Mode = "quick" if arguments.quick else "full"
    sys.exit(asyncio.run(main(mode, chosen, arguments.keep)))
