"""The three scripts on IBM's public Telco churn data with the example schema: real data nobody on
the team wrote, with published reference results (see ../shared/datasets/README.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import CONFIG, run_script

pytestmark = pytest.mark.dataset


def test_telco_reaches_published_accuracy_and_no_implausible_auc(tmp_path: Path, telco_csv: Path) -> None:
    (tmp_path / "in").mkdir()
    shutil.copyfile(telco_csv, tmp_path / "in" / "telco.csv")
    out, model, evaluation = tmp_path / "out", tmp_path / "model", tmp_path / "eval"
    steps = [
        ("preprocessing.py", ["--input-dir", tmp_path / "in", "--schema", CONFIG / "telco_schema.json",
                              "--output-dir", out]),
        ("training.py", ["--train", out / "train", "--validation", out / "validation",
                         "--preprocessor", out / "preprocessor", "--model-dir", model]),
        ("evaluation.py", ["--model", model, "--holdout", out / "holdout", "--output-dir", evaluation]),
    ]
    for name, args in steps:
        result = run_script(name, *args)
        assert result.returncode == 0, result.stderr

    quality = json.loads((out / "quality" / "data_quality.json").read_text())
    assert quality["rows_used"] == 7043
    assert quality["missing_values"]["TotalCharges"] == 11  # the blank cells of tenure-0 customers
    report = json.loads((evaluation / "evaluation.json").read_text())
    # The split by customer id is not stratified; the quality must not suffer for it.
    assert report["metrics"]["accuracy"] >= 0.79
    # Published work on this data reaches 0.82-0.86 ROC AUC: far above that would mean gross leakage of
    # the target into the features (a subtle leak is the preprocessing test's job).
    assert 0.83 <= report["metrics"]["roc_auc"] <= 0.90
    assert abs(report["baseline"]["majority_class_accuracy"] - 0.735) < 0.01
