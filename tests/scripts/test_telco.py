"""The three scripts on IBM's public Telco churn data with the example schema: real data nobody on
the team wrote, with published reference results (see ../shared/datasets/README.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import CONFIG, TELCO_CSV, needs_telco, run_script

pytestmark = [needs_telco(), pytest.mark.dataset]


def test_telco_reaches_published_accuracy_without_leakage(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    shutil.copyfile(TELCO_CSV, tmp_path / "in" / "telco.csv")
    out, model, evaluation = tmp_path / "out", tmp_path / "model", tmp_path / "eval"
    steps = [
        ("preprocessing.py", ["--input-dir", tmp_path / "in", "--schema", CONFIG / "telco_schema.json",
                              "--output-dir", out]),
        ("training.py", ["--train", out / "train", "--validation", out / "validation",
                         "--preprocessor", out / "preprocessor", "--model-dir", model]),
        ("evaluation.py", ["--model", model, "--test", out / "test", "--output-dir", evaluation]),
    ]
    for name, args in steps:
        result = run_script(name, *args)
        assert result.returncode == 0, result.stderr

    quality = json.loads((out / "quality" / "data_quality.json").read_text())
    assert quality["rows_used"] == 7043
    assert quality["missing_values"]["TotalCharges"] == 11  # the blank cells of tenure-0 customers
    report = json.loads((evaluation / "evaluation.json").read_text())
    assert report["metrics"]["accuracy"] >= 0.78
    assert 0.82 <= report["metrics"]["roc_auc"] <= 0.90, "above 0.90 would mean leakage"
    assert abs(report["baseline"]["majority_class_accuracy"] - 0.735) < 0.01
