"""Longest test modules first, so two xdist workers finish together.

`make unit` runs `-n 2 --dist loadfile --no-loadscope-reorder`: each module goes whole to one worker,
in the order collected, and a worker that finishes a module takes the next. By default xdist orders
modules by their number of tests (xdist/scheduler/loadscope.py, `loadscopereorder`), which puts the
many cheap unit-test modules first and the few slow rehearsals (a dozen tests, each starting a pack
and the emulator's keys) last, where one worker runs them alone while the other has nothing left.
Scheduling the longest first ("longest processing time first") leaves only short modules for the end.

The figures are each module's seconds in the last run that ran it, kept in pytest's cache
(.pytest_cache, `MODULE_SECONDS`), written by the controller at the end of a run. The controller
hands its copy to each worker (`workerinput`) so both collect in the same order, as xdist requires.
Without figures (a fresh checkout, `-p no:cacheprovider`) the order is pytest's own. Tests pass in any
order; this only changes how soon the suite ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

MODULE_SECONDS: Final = "atlassian-cmk/module-seconds"
"""The pytest cache key (and workerinput key) of {module path: seconds of its tests in the last run}."""


def module_of(nodeid: str) -> str:
    """`tests/test_x.py::test_y[p]` -> `tests/test_x.py`."""
    return nodeid.split("::", 1)[0]


def longest_first(nodeids: Sequence[str], seconds: Mapping[str, float]) -> list[int]:
    """The positions of `nodeids` in running order: whole modules by their `seconds`, longest first; a
    module without a figure (new since the last run) goes first, as it may be long. Ties and each
    module's own tests keep their order (a stable sort), so module- and class-scoped fixtures are set
    up as often as before."""
    return sorted(range(len(nodeids)), key=lambda i: -seconds.get(module_of(nodeids[i]), float("inf")))


def merged(previous: Mapping[str, float], measured: Mapping[str, float]) -> dict[str, float]:
    """The figures to keep: the last run's where it ran a module, older ones for modules it did not run
    (a run of one file keeps the others'), rounded to 0.1 s."""
    return {module: round(value, 1) for module, value in {**previous, **measured}.items()}
