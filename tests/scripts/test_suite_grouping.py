"""The suite's own machinery: `make test` runs with `--dist loadgroup`, and the end-to-end tests that
share an expensive history (a trained and approved champion, a finished run, the calls recorded
against moto) rely on every test of an `xdist_group` running on one worker. pytest-xdist stops doing
so silently on some pytest versions (pytest-dev/pytest-xdist#1386); this fails instead."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GROUPED_SUITE = '''
import os, pytest

def record(name):
    with open(os.environ["WORKERS_SEEN"], "a") as seen:
        seen.write(f"{name} {os.environ['PYTEST_XDIST_WORKER']}\\n")

@pytest.mark.xdist_group("shared")
@pytest.mark.parametrize("n", range(6))
def test_grouped(n):
    record("grouped")

@pytest.mark.parametrize("n", range(6))
def test_free(n):
    record("free")
'''


def test_tests_of_one_xdist_group_run_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped_suite.py").write_text(GROUPED_SUITE)
    seen = tmp_path / "seen.txt"
    completed = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
                                "--dist", "loadgroup", "-q", "test_grouped_suite.py"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=300,
                               env={"PATH": "/usr/bin:/bin", "WORKERS_SEEN": str(seen)})
    assert completed.returncode == 0, completed.stdout[-3000:]
    lines = [line.split() for line in seen.read_text().splitlines()]
    assert len(lines) == 12
    assert len({worker for name, worker in lines if name == "grouped"}) == 1, "the group was split"
    assert len({worker for name, worker in lines}) == 2, "both workers were used"
