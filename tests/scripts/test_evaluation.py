"""evaluation.py: evaluation.json with the mission's keys and more, and a model that scores raw records."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

from tests.conftest import HEADER, SAMPLE_CSV, container_python, run_script

MISSION_METRICS = {"accuracy", "precision", "recall", "f1_score"}
CONFUSION_KEYS = {"true_negatives", "false_positives", "false_negatives", "true_positives"}


def test_evaluation_json_has_the_contracted_keys(sample_outputs: dict[str, Path]) -> None:
    report = json.loads((sample_outputs["evaluation"] / "evaluation.json").read_text())

    assert set(report) == {"metrics", "confusion_matrix", "baseline", "rows", "binary_classification_metrics"}
    assert set(report["metrics"]) == MISSION_METRICS | {"roc_auc"}
    assert set(report["confusion_matrix"]) == CONFUSION_KEYS
    assert sum(report["confusion_matrix"].values()) == report["rows"]["test"]
    assert set(report["baseline"]) == {"majority_class_accuracy"}
    quality = report["binary_classification_metrics"]
    for name in ("accuracy", "precision", "recall", "f1", "auc"):
        assert set(quality[name]) == {"value", "standard_deviation"}
        assert 0.0 <= quality[name]["standard_deviation"] < 0.1
    assert quality["accuracy"]["value"] == report["metrics"]["accuracy"]
    assert quality["confusion_matrix"]["1"]["1"] == report["confusion_matrix"]["true_positives"]


def test_metrics_are_consistent_with_the_confusion_matrix(sample_outputs: dict[str, Path]) -> None:
    report = json.loads((sample_outputs["evaluation"] / "evaluation.json").read_text())
    cm = report["confusion_matrix"]
    tp, fp, fn, tn = cm["true_positives"], cm["false_positives"], cm["false_negatives"], cm["true_negatives"]
    assert abs(report["metrics"]["accuracy"] - (tp + tn) / (tp + tn + fp + fn)) < 1e-12
    assert abs(report["metrics"]["precision"] - tp / (tp + fp)) < 1e-12
    assert abs(report["metrics"]["recall"] - tp / (tp + fn)) < 1e-12
    # the sample has a real signal: better than always guessing the majority class, but not leaking
    assert report["baseline"]["majority_class_accuracy"] < report["metrics"]["accuracy"] < 0.95
    assert 0.75 < report["metrics"]["roc_auc"] < 0.97


def test_reads_model_tar_gz_as_sagemaker_stages_it_and_is_deterministic(tmp_path: Path,
                                                                         sample_outputs: dict[str, Path]) -> None:
    staged = tmp_path / "model"
    staged.mkdir()
    with tarfile.open(staged / "model.tar.gz", "w:gz") as archive:
        for path in sorted(sample_outputs["model"].iterdir()):
            archive.add(path, arcname=path.name)
    result = run_script("evaluation.py", "--model", staged, "--test", sample_outputs["out"] / "test",
                        "--output-dir", tmp_path / "eval")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "eval" / "evaluation.json").read_bytes() == \
        (sample_outputs["evaluation"] / "evaluation.json").read_bytes()


def test_a_test_split_that_does_not_fit_the_model_is_rejected(tmp_path: Path,
                                                              sample_outputs: dict[str, Path]) -> None:
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "test.csv").write_text("label,a,b\n1,0.5,0.2\n0,0.1,0.3\n")
    result = run_script("evaluation.py", "--model", sample_outputs["model"], "--test", tmp_path / "test",
                        "--output-dir", tmp_path / "eval")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "2 feature(s) but the model expects" in result.stderr
    assert not (tmp_path / "eval").exists() or list((tmp_path / "eval").iterdir()) == []


SCORE_IN_FRESH_PROCESS = r"""
import json, sys
sys.path.insert(0, sys.argv[1] + "/code")  # as the serving container does with SAGEMAKER_SUBMIT_DIRECTORY
import inference
model = inference.model_fn(sys.argv[1])
csv_body = open(sys.argv[2]).read()
body, content_type = inference.output_fn(inference.predict_fn(inference.input_fn(csv_body, "text/csv"), model),
                                         "application/json")
records = [{"Gender": "Female", "Age": "34", "Tenure": 2, "MonthlyCharges": 99.5, "TotalCharges": "",
            "Contract": "Month-to-month", "InternetService": "Fiber optic", "TechSupport": "No",
            "StreamingTV": "Yes", "PaymentMethod": "Electronic check", "Unseen": "ignored"},
           {"Gender": "Male", "Age": 61, "Tenure": 70, "MonthlyCharges": 25, "TotalCharges": 1750,
            "Contract": "Two year", "InternetService": "DSL", "TechSupport": "Yes", "StreamingTV": "No",
            "PaymentMethod": "A brand-new payment method"}]
json_body, _ = inference.output_fn(inference.predict_fn(
    inference.input_fn(json.dumps({"instances": records}), "application/json"), model), "application/json")
print(json.dumps({"csv": json.loads(body), "json": json.loads(json_body), "type": content_type}))
"""


def test_packaged_model_scores_raw_records_in_a_fresh_process(tmp_path: Path, sample_outputs: dict[str, Path]) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text("\n".join(SAMPLE_CSV.read_text().splitlines()[:21]) + "\n")
    completed = subprocess.run([container_python(), "-c", SCORE_IN_FRESH_PROCESS, str(sample_outputs["model"]),
                                str(raw)], capture_output=True, text=True, cwd=tmp_path,
                               env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
                               timeout=300)
    assert completed.returncode == 0, completed.stderr
    answer = json.loads(completed.stdout)
    assert answer["type"] == "application/json"
    assert len(answer["csv"]["predictions"]) == 20
    assert all(0.0 <= p["probability"] <= 1.0 for p in answer["csv"]["predictions"])
    risky, loyal = answer["json"]["predictions"]
    assert risky["probability"] > loyal["probability"], "month-to-month fibre without support should churn more"
    assert HEADER.split(",")[0] == "CustomerID"
