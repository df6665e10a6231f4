"""evaluation.py: evaluation.json with the mission's keys and more; both models scored on the same
held-out customers, each through its own preprocessor; what the report draws; drift; and a model that
scores raw records."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SAMPLE_CSV, container_python, run_script

MISSION_METRICS = {"accuracy", "precision", "recall", "f1_score"}
CONFUSION_KEYS = {"true_negatives", "false_positives", "false_negatives", "true_positives"}


def test_evaluation_json_has_the_contracted_keys(sample_outputs: dict[str, Path]) -> None:
    report = json.loads((sample_outputs["evaluation"] / "evaluation.json").read_text())

    assert set(report) == {"metrics", "confusion_matrix", "baseline", "rows", "binary_classification_metrics",
                           "champion", "ranking", "economics", "calibration"}
    assert report["champion"] is None  # none was given
    assert set(report["metrics"]) == MISSION_METRICS | {"roc_auc", "lift_at_10", "expected_profit"}
    assert set(report["confusion_matrix"]) == CONFUSION_KEYS
    assert sum(report["confusion_matrix"].values()) == report["rows"]["test"]
    assert set(report["baseline"]) == {"majority_class_accuracy"}
    quality = report["binary_classification_metrics"]
    for name in ("accuracy", "precision", "recall", "f1", "auc"):
        assert set(quality[name]) == {"value", "standard_deviation"}
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


def expected_deviations(report: dict) -> dict[str, float]:
    """Each metric's standard deviation over test splits of this size, from the confusion matrix alone:
    a proportion's binomial deviation over the rows it is counted on (the delta method for F1, which
    is 2q / (1 + q) of the share q of true positives among the rows F1 counts), and Hanley & McNeil
    (1982) for ROC AUC. The script's bootstrap must land near these."""
    cm = report["confusion_matrix"]
    tp, fp, fn, tn = cm["true_positives"], cm["false_positives"], cm["false_negatives"], cm["true_negatives"]

    def binomial(share: float, rows: int) -> float:
        return math.sqrt(share * (1 - share) / rows)

    counted_by_f1 = tp + fp + fn
    q = tp / counted_by_f1
    auc, positives, negatives = report["metrics"]["roc_auc"], tp + fn, tn + fp
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    auc_variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) \
        / (positives * negatives)
    return {"accuracy": binomial((tp + tn) / report["rows"]["test"], report["rows"]["test"]),
            "precision": binomial(tp / (tp + fp), tp + fp), "recall": binomial(tp / (tp + fn), tp + fn),
            "f1": 2 / (1 + q) ** 2 * binomial(q, counted_by_f1), "auc": math.sqrt(auc_variance)}


def test_standard_deviations_are_those_of_a_test_split_of_this_size(sample_outputs: dict[str, Path]) -> None:
    """What the registry shows beside each metric: how much it would move on another test split."""
    report = json.loads((sample_outputs["evaluation"] / "evaluation.json").read_text())
    quality = report["binary_classification_metrics"]
    for name, expected in expected_deviations(report).items():
        assert expected > 0.001, f"the sample's {name} must be uncertain enough to tell zero apart"
        assert quality[name]["standard_deviation"] == pytest.approx(expected, rel=0.1), name


def test_reads_model_tar_gz_as_sagemaker_stages_it_and_is_deterministic(tmp_path: Path,
                                                                         sample_outputs: dict[str, Path]) -> None:
    staged = tmp_path / "model"
    staged.mkdir()
    with tarfile.open(staged / "model.tar.gz", "w:gz") as archive:
        for path in sorted(sample_outputs["model"].iterdir()):
            archive.add(path, arcname=path.name)
    result = run_script("evaluation.py", "--model", staged, "--holdout", sample_outputs["out"] / "holdout",
                        "--baseline", sample_outputs["out"] / "profile", "--output-dir", tmp_path / "eval")
    assert result.returncode == 0, result.stderr
    for name in ("evaluation.json", "details.json", "drift.json"):
        assert (tmp_path / "eval" / name).read_bytes() == (sample_outputs["evaluation"] / name).read_bytes(), name


def test_held_out_customers_lacking_a_column_the_model_needs_are_rejected(tmp_path: Path,
                                                                          sample_outputs: dict[str, Path]) -> None:
    holdout = pd.read_parquet(sample_outputs["out"] / "holdout" / "holdout.parquet").drop(columns=["Tenure"])
    (tmp_path / "holdout").mkdir()
    holdout.to_parquet(tmp_path / "holdout" / "holdout.parquet")
    result = run_script("evaluation.py", "--model", sample_outputs["model"], "--holdout", tmp_path / "holdout",
                        "--output-dir", tmp_path / "eval")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "rejected its input" in result.stderr and "missing column 'Tenure'" in result.stderr
    assert not (tmp_path / "eval").exists() or list((tmp_path / "eval").iterdir()) == []


def evaluate_against(tmp_path: Path, sample_outputs: dict[str, Path], champion: Path) -> dict:
    result = run_script("evaluation.py", "--model", sample_outputs["model"], "--holdout",
                        sample_outputs["out"] / "holdout", "--champion", champion,
                        "--champion-identifier", "models:/customer-churn/1", "--champion-version", "1",
                        "--output-dir", tmp_path / "eval")
    assert result.returncode == 0, result.stderr  # a champion never fails the job
    return json.loads((tmp_path / "eval" / "evaluation.json").read_text())


def test_both_models_are_scored_on_the_same_customers_with_the_same_code(tmp_path: Path,
                                                                       sample_outputs: dict[str, Path]) -> None:
    report = evaluate_against(tmp_path, sample_outputs, sample_outputs["model"])  # the model against itself
    champion = report["champion"]
    assert champion["comparable"] is True and champion["reason"] is None
    assert champion["identifier"] == "models:/customer-churn/1" and champion["version"] == 1
    assert champion["metrics"] == report["metrics"]
    assert champion["delta"] == dict.fromkeys(report["metrics"], 0.0)
    details = json.loads((tmp_path / "eval" / "details.json").read_text())
    assert set(details["roc"]) == {"challenger", "champion"}


def test_a_champion_whose_columns_are_gone_is_recorded_as_not_comparable(tmp_path: Path,
                                                                         sample_outputs: dict[str, Path]) -> None:
    champion = tmp_path / "champion"
    shutil.copytree(sample_outputs["model"], champion)
    schema = json.loads((champion / "schema.json").read_text())
    schema["categorical"].append("Region")  # it was trained on a column this run's customers do not have
    (champion / "schema.json").write_text(json.dumps(schema))
    block = evaluate_against(tmp_path, sample_outputs, champion)["champion"]
    assert block["comparable"] is False and block["metrics"] == {} and block["delta"] == {}
    assert "cannot score this run's customers" in block["reason"] and "missing column 'Region'" in block["reason"]


def test_an_unreadable_champion_is_recorded_as_not_comparable(tmp_path: Path, sample_outputs: dict[str, Path]) -> None:
    champion = tmp_path / "champion"
    champion.mkdir()
    (champion / "model.tar.gz").write_bytes(b"not a tarball")
    block = evaluate_against(tmp_path, sample_outputs, champion)["champion"]
    assert block["comparable"] is False and "could not be loaded" in block["reason"]


def test_details_hold_what_the_report_draws(sample_outputs: dict[str, Path]) -> None:
    details = json.loads((sample_outputs["evaluation"] / "details.json").read_text())
    roc = details["roc"]["challenger"]
    assert len(roc["fpr"]) == len(roc["tpr"]) <= 200 and roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0
    report = json.loads((sample_outputs["evaluation"] / "evaluation.json").read_text())
    assert abs(roc["auc"] - report["metrics"]["roc_auc"]) < 1e-12
    calibration = details["calibration"]["challenger"]
    assert sum(calibration["count"]) == report["rows"]["test"]
    importance = details["permutation_importance"]
    names = [item["name"] for item in importance["features"]]
    assert sorted(names) == sorted(json.loads((sample_outputs["model"] / "schema.json").read_text())["numeric"]
                                   + json.loads((sample_outputs["model"] / "schema.json").read_text())["categorical"])
    means = [item["mean"] for item in importance["features"]]
    assert means == sorted(means, reverse=True) and means[0] > 0.01  # the contract matters in this data


def test_drift_against_its_own_training_profile_is_ok(sample_outputs: dict[str, Path]) -> None:
    drift = json.loads((sample_outputs["evaluation"] / "drift.json").read_text())
    assert drift["status"] == "compared" and drift["summary"]["worst_level"] == "ok"
    assert drift["current"]["rows"] == json.loads((sample_outputs["evaluation"] / "evaluation.json").read_text())[
        "rows"]["test"]


def test_without_baseline_drift_says_so_and_no_drift_writes_none(tmp_path: Path,
                                                                 sample_outputs: dict[str, Path]) -> None:
    common = ["--model", sample_outputs["model"], "--holdout", sample_outputs["out"] / "holdout"]
    assert run_script("evaluation.py", *common, "--output-dir", tmp_path / "a").returncode == 0
    assert json.loads((tmp_path / "a" / "drift.json").read_text())["status"] == "no_baseline"
    assert run_script("evaluation.py", *common, "--no-drift", "--output-dir", tmp_path / "b").returncode == 0
    assert not (tmp_path / "b" / "drift.json").exists()


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


def test_scores_written_for_the_other_engine_value_the_champion_as_if_it_scored_itself(
        tmp_path: Path, sample_outputs: dict[str, Path]) -> None:
    """A scikit-learn champion of a Spark run: its image writes its (label, probability) pairs, and an
    evaluation given them (here this image's own, the Spark one reads them the same way) values the
    champion exactly as it does when it loads the model itself."""
    written = run_script("evaluation.py", "--model", sample_outputs["model"], "--holdout",
                         sample_outputs["out"] / "holdout", "--write-scores", "--output-dir", tmp_path / "scores")
    assert written.returncode == 0, written.stderr
    assert sorted(path.name for path in (tmp_path / "scores").iterdir()) == ["champion_scores.npz", "decision.json"]
    result = run_script("evaluation.py", "--model", sample_outputs["model"], "--holdout",
                        sample_outputs["out"] / "holdout", "--champion-scores", tmp_path / "scores",
                        "--champion-identifier", "models:/customer-churn/1", "--champion-version", "1",
                        "--output-dir", tmp_path / "eval")
    assert result.returncode == 0, result.stderr
    from_pairs = json.loads((tmp_path / "eval" / "evaluation.json").read_text())["champion"]
    loaded = evaluate_against(tmp_path / "loaded", sample_outputs, sample_outputs["model"])["champion"]
    assert from_pairs == loaded


def test_scores_of_other_customers_or_of_a_model_that_cannot_score_are_not_comparable(
        tmp_path: Path, sample_outputs: dict[str, Path]) -> None:
    import numpy as np

    holdout = sample_outputs["out"] / "holdout"
    run_script("evaluation.py", "--model", sample_outputs["model"], "--holdout", holdout, "--write-scores",
               "--output-dir", tmp_path / "scores")
    with np.load(tmp_path / "scores" / "champion_scores.npz") as pairs:
        label, probability = pairs["label"][:-1], pairs["probability"][:-1]  # one customer fewer
    with open(tmp_path / "scores" / "champion_scores.npz", "wb") as handle:
        np.savez(handle, label=label, probability=probability)
    unreadable = tmp_path / "spark-model"
    unreadable.mkdir()
    (unreadable / "model.tar.gz").write_bytes(b"not a tarball")
    written = run_script("evaluation.py", "--model", unreadable, "--holdout", holdout, "--write-scores",
                         "--output-dir", tmp_path / "unscored")
    assert written.returncode == 0, written.stderr  # a champion that cannot score never fails the job

    for scores, reason in ((tmp_path / "scores", "the champion was scored on other customers: "),
                           (tmp_path / "unscored", "the champion could not be loaded or scored")):
        result = run_script("evaluation.py", "--model", sample_outputs["model"], "--holdout", holdout,
                            "--champion-scores", scores, "--output-dir", tmp_path / f"eval-{scores.name}")
        assert result.returncode == 0, result.stderr
        block = json.loads((tmp_path / f"eval-{scores.name}" / "evaluation.json").read_text())["champion"]
        assert block["comparable"] is False and block["reason"].startswith(reason), block["reason"]
        assert block["metrics"] == {} and block["delta"] == {}
