"""The command line of the local backend: approving moves the champion to the newest approved version,
rejecting the champion hands the title on, the listing says what each version is, and the report and
summary of a run are found."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.services.objectstore import LocalObjectStore
from churn_pipeline.services.registry import MlflowRegistry
from churn_pipeline.tooling import cli
from tests.builders import passing_decision, registration_request

KEYS = ("20261101T020000Z", "20261102T020000Z", "20261103T020000Z")


@pytest.fixture()
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowRegistry:
    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path))
    monkeypatch.delenv("CHURN_BACKEND", raising=False)
    settings = load_settings()
    registry = MlflowRegistry(tmp_path)
    for key in KEYS:
        registry.register(registration_request(settings, key))
    return registry


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_newest_approved_version_is_the_champion(registry, capsys) -> None:
    assert run(capsys, "champion")[1].startswith("no approved version of customer-churn yet")
    assert "version 2 is the champion" in run(capsys, "approve", "2")[1]
    assert "version 3 is the champion" in run(capsys, "approve", "3")[1]
    assert "version 3 is the champion" in run(capsys, "approve", "1")[1]  # older: approved, not champion
    assert registry.champion("customer-churn").version == 3
    assert "version 3 (models:/customer-churn/3)" in run(capsys, "champion")[1]


def test_rejecting_the_champion_hands_the_title_to_the_next_newest_approved(registry, capsys) -> None:
    run(capsys, "approve", "1")
    run(capsys, "approve", "2")
    assert "version 1 is the champion" in run(capsys, "reject", "2")[1]
    assert "no champion" in run(capsys, "reject", "1")[1]
    assert registry.champion("customer-churn") is None


def test_an_unknown_version_is_named_with_the_known_ones(registry, capsys) -> None:
    code, _, error = run(capsys, "approve", "9")
    assert code == 1 and "no version 9 of customer-churn; known: [1, 2, 3]" in error


def test_versions_is_a_table_with_header_status_metrics_and_data_source(registry, capsys) -> None:
    run(capsys, "approve", "2")
    lines = run(capsys, "versions")[1].splitlines()
    assert lines[0].startswith("customer-churn in sqlite:///")
    assert lines[1].split() == ["version", "status", "accuracy", "roc_auc", "run", "data", "source"]
    assert lines[3].split()[:3] == ["2", "Approved", "*"] and "s3://b/in.csv" in lines[3]
    assert "0.8100" in lines[2] and "0.8600" in lines[2] and KEYS[0] in lines[2]
    assert lines[-1].startswith("* the champion")


def test_report_and_summary_find_a_runs_files(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path))
    settings = load_settings()
    store, layout = LocalObjectStore(tmp_path), RunLayout(settings.base_uri, KEYS[0])
    store.write_bytes(layout.evaluation_file_uri, json.dumps({
        "metrics": {"accuracy": 0.81}, "baseline": {"majority_class_accuracy": 0.72}, "champion": None}).encode())
    decision = passing_decision(details=("accuracy 0.8100 >= threshold 0.7500", "no approved champion yet"))
    store.write_bytes(layout.decision_file_uri, json.dumps(decision.to_xcom()).encode())
    store.write_bytes(layout.report_file_uri, b"<!DOCTYPE html>")

    assert run(capsys, "report")[1].strip() == str(store.path_for(layout.report_file_uri))
    summary = run(capsys, "summary", "--run-key", KEYS[0])[1]
    assert "gate          passed" in summary and "- no approved champion yet" in summary
    assert "champion      none approved yet" in summary and "report" in summary
    assert ".venv/bin/mlflow ui --backend-store-uri sqlite:///" in summary
    assert "  versions      .venv/bin/churn versions" in summary.splitlines()


def test_a_run_that_stopped_before_the_gate_has_no_report(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path))
    settings = load_settings()
    LocalObjectStore(tmp_path).write_bytes(f"{RunLayout(settings.base_uri, KEYS[1]).run_uri}/code/x.py", b"")
    code, _, error = run(capsys, "report")
    assert code == 1 and "stopped before the gate" in error
    assert f"(see `.venv/bin/churn summary --run-key {KEYS[1]}`)" in error


def test_the_command_is_the_churn_console_script_of_the_installed_project(capsys) -> None:
    """`churn` in .venv/bin is what the README and make call; the editable install makes it."""
    (script,) = entry_points(group="console_scripts", name="churn")
    assert script.value == "churn_pipeline.tooling.cli:main" and script.load() is cli.main
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: churn ")
