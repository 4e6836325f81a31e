"""The suite's scheduling aid: longest test modules first (tests/support/module_order.py)."""

from __future__ import annotations

from tests.support.module_order import longest_first, merged

NODEIDS = [
    "tests/test_a.py::test_1",
    "tests/test_a.py::test_2",
    "tests/test_b.py::test_1[x]",
    "tests/test_b.py::test_1[y]",
    "tests/test_c.py::test_1",
    "tests/test_d.py::test_1",
]


def ordered(seconds: dict[str, float]) -> list[str]:
    return [NODEIDS[i] for i in longest_first(NODEIDS, seconds)]


def test_modules_run_longest_first_each_whole_and_in_its_own_order() -> None:
    seconds = {"tests/test_a.py": 1.0, "tests/test_b.py": 9.0, "tests/test_c.py": 3.0, "tests/test_d.py": 0.1}

    assert ordered(seconds) == [NODEIDS[2], NODEIDS[3], NODEIDS[4], NODEIDS[0], NODEIDS[1], NODEIDS[5]]


def test_a_module_without_a_figure_goes_first_and_ties_keep_the_collected_order() -> None:
    seconds = {"tests/test_a.py": 2.0, "tests/test_b.py": 2.0, "tests/test_d.py": 5.0}

    assert ordered(seconds) == [NODEIDS[4], NODEIDS[5], *NODEIDS[:4]]


def test_without_figures_the_order_is_the_collected_one() -> None:
    assert ordered({}) == NODEIDS


def test_a_run_of_some_modules_keeps_the_figures_of_the_others() -> None:
    assert merged({"tests/test_a.py": 4.0, "tests/test_b.py": 1.0}, {"tests/test_b.py": 2.345}) == {
        "tests/test_a.py": 4.0,
        "tests/test_b.py": 2.3,
    }
