"""A pytest plugin for bench/bench_suite.py: per test module, what it cost and what it started.

Loaded with `-p bench.suite_census` (never by the suite itself). For each test module it records
the wall time and the CPU (user+sys) of the pytest process and of its waited-for children
(`os.times`, so a pack process counts once it has been killed and reaped), and how many
processes it started, by kind: policy packs (the CLI's `-m pulumi.policy` command), cmkctl
(the installed entry point or `-m atlassian_cmk.cli`), others; and moto servers started in-process.
Time outside any test (collection, session fixtures' teardown) is put under "(session)".
Each process (xdist worker or not) writes its figures as JSON to $SUITE_CENSUS_DIR/<worker>.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import defaultdict
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

_FIGURES: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
_TESTS: dict[str, list[float]] = {}  # node ID -> [wall s, cpu s]
_current = ["(session)"]


def _kind(argv: Any) -> str:
    words = [str(a) for a in argv] if isinstance(argv, list | tuple) else str(argv).split()
    text = " ".join(words)
    if "pulumi.policy" in text:
        return "packs"
    if (words and Path(words[0]).name == "cmkctl") or "atlassian_cmk.cli" in text:
        return "cmkctl"
    return "other processes"


_real_popen_init = subprocess.Popen.__init__
_real_moto_start = ThreadedMotoServer.start


def _counting_popen_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
    _FIGURES[_current[0]][_kind(args)] += 1
    _real_popen_init(self, args, *rest, **kwargs)


def _counting_moto_start(self: ThreadedMotoServer) -> None:
    _FIGURES[_current[0]]["moto servers"] += 1
    _real_moto_start(self)


subprocess.Popen.__init__ = _counting_popen_init  # type: ignore[method-assign]
ThreadedMotoServer.start = _counting_moto_start  # type: ignore[method-assign]


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    module = item.nodeid.split("::", 1)[0]
    _current[0] = module
    wall, cpu = time.perf_counter(), _cpu()
    yield
    figures = _FIGURES[module]
    figures["wall s"] += time.perf_counter() - wall
    figures["cpu s"] += _cpu() - cpu
    figures["tests"] += 1
    _TESTS[item.nodeid] = [time.perf_counter() - wall, _cpu() - cpu]
    _current[0] = "(session)"


_started = [time.perf_counter(), _cpu()]


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = os.environ.get("SUITE_CENSUS_DIR")
    if not folder:
        return
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    if worker == "main" and config.getoption("numprocesses", None):
        return  # the xdist controller runs no test; its children's CPU is the workers'
    in_tests = sum(f["cpu s"] for name, f in _FIGURES.items() if name != "(session)")
    session = _FIGURES["(session)"]
    session["wall s"] = (
        time.perf_counter() - _started[0] - sum(f["wall s"] for name, f in _FIGURES.items() if name != "(session)")
    )
    session["cpu s"] = _cpu() - _started[1] - in_tests
    Path(folder, f"{worker}.json").write_text(
        json.dumps({"modules": {k: dict(v) for k, v in _FIGURES.items()}, "tests": _TESTS})
    )
