"""The suite's own order (``tests/support/ordering.py``), run by pytest's pytester in a temp dir."""

from __future__ import annotations

import json

import pytest

MODULES = {
    "tests/test_light.py": "def test_a():\n    pass\n\ndef test_b():\n    pass\n",
    "tests/test_heavy.py": "def test_c():\n    pass\n",
    "tests/test_new_slow.py": "import pytest\n\n@pytest.mark.slow\ndef test_d():\n    pass\n",
    "tests/test_new_plain.py": "def test_e():\n    pass\n",
}


@pytest.fixture
def project(pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n    slow: slow\n    fuzz: fuzz\n")
    for path, text in MODULES.items():
        pytester.path.joinpath(path).parent.mkdir(parents=True, exist_ok=True)
        pytester.path.joinpath(path).write_text(text)
    return pytester


def collected(pytester, *args):
    result = pytester.runpytest_inprocess("-p", "support.ordering", "-p", "no:cacheprovider", "--collect-only",
                                          "-q", *args)
    return [l for l in result.outlines if "::" in l]


def test_recorded_modules_go_heaviest_first_then_new_slow_tests_then_the_rest(project):
    (project.path / "tests" / "durations.json").write_text(json.dumps(
        {"tests/test_light.py": 1.5, "tests/test_heavy.py": 30.0}))
    assert collected(project) == [
        "tests/test_heavy.py::test_c", "tests/test_light.py::test_a", "tests/test_light.py::test_b",
        "tests/test_new_slow.py::test_d", "tests/test_new_plain.py::test_e"]


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '{"tests/test_heavy.py": "x"}'])
def test_an_absent_or_unreadable_file_orders_only_by_marker(project, text):
    if text:
        (project.path / "tests" / "durations.json").write_text(text)
    order = collected(project)
    assert order[0] == "tests/test_new_slow.py::test_d" and len(order) == 5


def test_record_durations_writes_a_passing_runs_seconds_and_keeps_the_file_after_a_failure(project):
    path = project.path / "tests" / "durations.json"
    result = project.runpytest_inprocess("-p", "support.ordering", "-p", "no:cacheprovider", "--record-durations")
    assert result.ret == 0
    seconds = json.loads(path.read_text())
    assert set(seconds) == set(MODULES) and all(isinstance(v, float) and v >= 0 for v in seconds.values())
    assert "--record-durations: wrote 4 modules" in result.stdout.str()

    project.path.joinpath("tests/test_new_plain.py").write_text("def test_e():\n    assert False\n")
    before = path.read_text()
    result = project.runpytest_inprocess("-p", "support.ordering", "-p", "no:cacheprovider", "--record-durations")
    assert result.ret == 1
    assert path.read_text() == before
    assert "the run did not pass" in result.stdout.str()
