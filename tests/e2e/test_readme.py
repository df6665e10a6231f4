"""Every shell command of the README, pasted into a new shell in a fresh copy of the project, in the
README's order: each works, and says what the README says it does.

The copy holds what a clone holds (the tracked files and new ones not ignored), without .venv,
Airflow's database or a local store; the shell has the machine's variables (proxy, certificates,
caches) but none of this session's, and no .venv/bin on PATH. The commands are read from the README
itself, so a command added there without an expectation here fails this test, as does a command
whose output changed. The one local file a command needs that a clone lacks, IBM's Telco data set,
is put where the README says to save it. The commands this test cannot run in sequence are run
elsewhere: `make test` is what CI runs, and `make standalone` / `make stop` run in
test_standalone.py.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT, REQUIRE_DATASETS, TELCO_CSV
from tests.e2e.conftest import fresh_shell
from tests.e2e.moto_server import free_port

pytestmark = pytest.mark.e2e
TELCO_COMMAND = "make run INPUT=local-store/telco.csv SCHEMA=include/config/telco_schema.json GROUP=telco-churn"
RUN_ELSEWHERE = {
    "make test": "CI runs it (.ci/run)",
    "make standalone": "tests/e2e/test_standalone.py",
    "make stop": "tests/e2e/test_standalone.py",
}
# what each command must print, in the README's order (a command may appear twice)
EXPECTED = {
    "make demo": ["registered    customer-churn version 1 (PendingManualApproval)", "gate          passed"],
    ".venv/bin/churn summary": ["registered    customer-churn version 1", "gate  "],
    TELCO_COMMAND: ["registered    telco-churn version 1 (PendingManualApproval)", "local-store/telco.csv"],
    "make versions GROUP=telco-churn": ["telco-churn in sqlite:///", "data source"],
    "make demo-sqlite": ["registered    customer-churn version 2", "data source   sqlite connection 'churn_sample_db'"],
    "make versions": ["customer-churn in sqlite:///", "version  status"],
    "make approve VERSION=1": ["champion of customer-churn: version 1 (models:/customer-churn/1)"],
    ".venv/bin/churn champion": ["version 1 (models:/customer-churn/1)"],
    ".venv/bin/churn reject 2": ["version 2 is now Rejected; version 1 is the champion"],
    (".venv/bin/python -m churn_pipeline.tooling.sample_data --shift MonthlyCharges=1.5 "
     "--output local-store/drifted/customers.csv"): [],
    "make run INPUT=local-store/drifted/customers.csv": [
        "champion      version 1:", "data drift in MonthlyCharges", "registered    customer-churn version 3"],
    ".venv/bin/churn report": ["report.html"],
    "make score": ["10000 customers scored with version 1", "most at risk"],
}


def readme_commands() -> list[str]:
    """The shell commands of the README's ```bash blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", (PROJECT / "README.md").read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = " ".join(shlex.split(line, comments=True))
            if command:
                commands.append(command)
    return commands


def fresh_copy(target: Path) -> Path:
    """The project as a clone of it holds it: tracked files and new ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = PROJECT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_every_readme_command_has_an_expectation_here_or_a_test_elsewhere() -> None:
    commands = readme_commands()
    unknown = [command for command in commands if command not in EXPECTED and command not in RUN_ELSEWHERE]
    assert unknown == [], f"README commands no test runs: {unknown}"
    assert set(EXPECTED) | set(RUN_ELSEWHERE) == set(commands), "expectations of commands the README lost"


def the_registry_ui_answers(printed: str, folder: Path, shell: dict[str, str]) -> None:
    """The `mlflow ui` command the summary prints works pasted as printed (on a free port, so that it
    cannot meet another server on MLflow's default one)."""
    (hint,) = re.findall(r"registry UI   (.+)", printed)
    port = free_port()
    server = subprocess.Popen(f"{hint} --port {port}", shell=True, cwd=folder, env=shell, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert server.poll() is None, f"{hint} ended with {server.returncode}"
                assert time.time() < deadline, f"{hint} never answered"
                time.sleep(1)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)


def test_the_readme_commands_work_pasted_into_a_new_shell_in_order(tmp_path: Path) -> None:
    folder = fresh_copy(tmp_path / "project")
    shell = fresh_shell()
    telco_present = TELCO_CSV.is_file()
    if telco_present:  # where the README says to save it
        (folder / "local-store").mkdir(exist_ok=True)
        shutil.copyfile(TELCO_CSV, folder / "local-store" / "telco.csv")
    elif os.environ.get(REQUIRE_DATASETS):
        pytest.fail(f"{TELCO_CSV} is absent, and {REQUIRE_DATASETS} says this machine must have it")

    for command in readme_commands():
        if command in RUN_ELSEWHERE or (command == TELCO_COMMAND and not telco_present):
            continue
        completed = subprocess.run(command, shell=True, cwd=folder, env=shell, capture_output=True, text=True,
                                   timeout=1200)
        shown = f"$ {command}\n{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
        assert completed.returncode == 0, shown
        for expected in EXPECTED[command]:
            assert expected in completed.stdout, f"{expected!r} missing from:\n{shown}"
        if command == "make demo":
            the_registry_ui_answers(completed.stdout, folder, shell)
        if command == TELCO_COMMAND:
            accuracy = float(re.search(r"test metrics  accuracy (\d\.\d+)", completed.stdout).group(1))
            assert accuracy >= 0.78, "IBM's Telco data reaches the published accuracy"
        if command.endswith("cli report"):
            assert Path(completed.stdout.strip()).is_file()
