"""Both sides of the container boundary agree on what crosses it: the constants and requests the DAG
side uses, and what the scripts really write, against the one contract both read
(``include/scripts/churn_common/contract.json``). PSI levels, the bad-input signal, content types,
output and channel names, and the keys of the steps' files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import evaluation
import preprocessing
import training
from churn_common import container, profile
from churn_common import contract as script_contract
from churn_common.data_contract import Schema
from churn_pipeline.domain import contract as dag_contract
from churn_pipeline.domain.attempt_planning import failure_reason, is_bad_input
from churn_pipeline.domain.layout import RunLayout, ScoringLayout
from churn_pipeline.domain.sagemaker_api import JobKind
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.local import transform as local_transform
from churn_pipeline.requests.processing import evaluate_request, preprocess_request
from churn_pipeline.requests.training import train_request
from churn_pipeline.requests.transform import TRANSFORM_OUTPUT_KEY, transform_request
from tests.builders import registration_request
from tests.conftest import container_python, run_script

KEY = "20261126T020000Z"
SETTINGS = load_settings({})
LAYOUT = RunLayout(SETTINGS.base_uri, KEY)
SCRIPT_STEPS = {preprocessing: JobKind.PROCESSING, training: JobKind.TRAINING, evaluation: JobKind.PROCESSING}
REASON_FILE = {JobKind.PROCESSING: container.PROCESSING_REASON_FILE, JobKind.TRAINING: container.TRAINING_REASON_FILE}


def test_every_side_reads_the_same_contract_file() -> None:
    files = {script_contract.CONTRACT_FILE, dag_contract.CONTRACT_FILE.resolve(), local_transform.CONTRACT_FILE}
    assert len(files) == 1 and next(iter(files)).is_file()


def test_the_psi_levels_agree_and_the_profile_applies_them() -> None:
    assert (profile.PSI_WATCH, profile.PSI_DRIFT, profile.LEVELS) == (
        dag_contract.PSI_WATCH_FROM, dag_contract.PSI_DRIFT_FROM, dag_contract.DRIFT_LEVELS)
    ok, watch, drift = dag_contract.DRIFT_LEVELS
    below = 1e-9
    assert [profile.level_of(psi) for psi in (dag_contract.PSI_WATCH_FROM - below, dag_contract.PSI_WATCH_FROM,
                                              dag_contract.PSI_DRIFT_FROM - below, dag_contract.PSI_DRIFT_FROM)] \
        == [ok, watch, watch, drift]


SCHEMA = Schema(id_column=None, target_column="Churn", positive="Yes", negative="No",
                numeric=("MonthlyCharges",), categorical=("Gender",))
FEATURES = pd.DataFrame({"MonthlyCharges": [20.0, 40.0, 60.0, 80.0] * 25, "Gender": ["Female", "Male"] * 50})


def test_the_report_and_the_gate_judge_drift_by_the_profiles_levels() -> None:
    """The report's legend and the gate's reading of drift.json use the levels the profile writes."""
    from churn_pipeline.domain.gate import DriftMode, GateRules, _drift_rule
    from churn_pipeline.report import view

    assert (view.PSI_WATCH_FROM, view.PSI_DRIFT_FROM) == (profile.PSI_WATCH, profile.PSI_DRIFT)
    _, watch, drift = profile.LEVELS
    compared = dag_contract.DRIFT_STATUSES[0]
    report = {"status": compared, "features": [{"name": "Tenure", "level": drift}, {"name": "Age", "level": watch}]}
    blocks, sentence, drifted = _drift_rule(GateRules(drift_mode=DriftMode.BLOCK), report)
    assert blocks and drifted == ("Tenure",) and "watch: Age" in sentence


def test_drift_json_holds_what_the_dag_side_reads_in_every_status() -> None:
    statistics, constraints = profile.build_profile(FEATURES, SCHEMA)
    comparison = constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"]
    assert comparison == dag_contract.PSI_DRIFT_FROM
    reports = [profile.measure_drift(None, None, FEATURES, SCHEMA, "now"),
               profile.measure_drift(statistics, {"version": 1}, FEATURES, SCHEMA, "now", unavailable="unreadable"),
               profile.measure_drift(statistics, {"version": 1}, FEATURES.assign(MonthlyCharges=90.0), SCHEMA, "now")]
    assert sorted(report["status"] for report in reports) == sorted(dag_contract.DRIFT_STATUSES)
    keys = dag_contract.shared_contract()["keys"]
    for report in reports:
        assert set(keys["drift"]) <= set(report)
        assert set(report["summary"]) == {*dag_contract.DRIFT_LEVELS, "worst_level"}
    compared = reports[2]
    assert compared["features"] and all(set(keys["drift_feature"]) <= set(item) for item in compared["features"])
    assert {item["level"] for item in compared["features"]} <= set(dag_contract.DRIFT_LEVELS)


# ---------------------------------------------------------------- the bad-input signal

def _reason_of(module: Any, error: Exception, base: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """What a script leaves where SageMaker reads it when its body raises ``error``."""
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(base))

    def body() -> None:
        raise error

    reason_file = REASON_FILE[SCRIPT_STEPS[module]]
    assert container.run_main(module.STEP, reason_file, body) == 1
    return (base / "output" / reason_file).read_text(encoding="utf-8")


def _description(kind: JobKind, **reason: str) -> dict[str, str]:
    return {kind.name_field: "churn-step-20261126T020000Z", kind.status_field: "Failed", **reason}


def test_the_scripts_name_exactly_the_steps_the_dag_side_knows() -> None:
    assert {module.STEP for module in SCRIPT_STEPS} == set(dag_contract.shared_contract()["bad_input"]["steps"])


@pytest.mark.parametrize("module", list(SCRIPT_STEPS), ids=lambda module: module.STEP)
@pytest.mark.parametrize("error", [container.ContractError("customers.csv", ["missing column 'Tenure'"] * 80),
                                   container.UsageError("split fractions must add up to 1")],
                         ids=["contract", "usage"])
def test_input_a_script_rejects_is_bad_input_on_the_dag_side(module: Any, error: Exception, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    kind = SCRIPT_STEPS[module]
    reason = _reason_of(module, error, tmp_path, monkeypatch)
    # as a processing job's ExitMessage, and as SageMaker's FailureReason: prefixed, first 1 KB only
    assert is_bad_input(failure_reason(kind, _description(kind, ExitMessage=reason)))
    assert is_bad_input(failure_reason(kind, _description(kind, FailureReason=f"AlgorithmError: {reason}"[:1024])))


@pytest.mark.parametrize("error", [RuntimeError("the champion rejected its input: no such column"),
                                   OSError(28, "No space left on device, the disk rejected its input")],
                         ids=["unexpected error", "environment fault"])
def test_the_same_words_anywhere_else_in_a_reason_are_retried(error: Exception, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    reason = _reason_of(evaluation, error, tmp_path, monkeypatch)
    assert "rejected its input" in reason
    assert not is_bad_input(failure_reason(JobKind.PROCESSING, _description(JobKind.PROCESSING, ExitMessage=reason)))
    assert not is_bad_input("AlgorithmError: scoring rejected its input: a step the contract does not name")


# ---------------------------------------------------------------- content types, outputs and channels

def _score(records_body: str, content_type: str, accept: str, model_dir: Path) -> subprocess.CompletedProcess:
    """The packaged model's handlers, run in the image twin as the serving container runs them."""
    program = (f"import sys; sys.path.insert(0, {str(model_dir / 'code')!r}); import inference\n"
               f"model = inference.model_fn({str(model_dir)!r})\n"
               f"body, media = inference.output_fn(inference.predict_fn(inference.input_fn(sys.stdin.read(), "
               f"{content_type!r}), model), {accept!r})\n"
               "print(media); print(body)")
    return subprocess.run([container_python(), "-c", program], input=records_body, capture_output=True, text=True,
                          timeout=300)


RECORD = {"Gender": "Female", "Age": 34, "Tenure": 2, "MonthlyCharges": 99.5, "TotalCharges": 200.0,
          "Contract": "Month-to-month", "InternetService": "Fiber optic", "TechSupport": "No", "StreamingTV": "Yes",
          "PaymentMethod": "Electronic check"}
BODY = {dag_contract.CSV: ",".join(RECORD) + "\n" + ",".join(map(str, RECORD.values())) + "\n",
        dag_contract.JSON: json.dumps([RECORD]), dag_contract.JSON_LINES: json.dumps(RECORD) + "\n"}


def test_the_model_reads_and_answers_every_type_its_package_and_the_transform_declare(
        sample_outputs: dict[str, Path]) -> None:
    package = registration_request(SETTINGS, KEY)["InferenceSpecification"]
    transform = transform_request(SETTINGS, ScoringLayout(SETTINGS.base_uri, "20261126T060000Z"), job_name="j",
                                  model="m", id_column="CustomerID")
    pairs = {(content_type, accept) for content_type in package["SupportedContentTypes"]
             for accept in package["SupportedResponseMIMETypes"]}
    pairs.add((transform["TransformInput"]["ContentType"], transform["TransformOutput"]["Accept"]))
    for content_type, accept in sorted(pairs):
        scored = _score(BODY[content_type], content_type, accept, sample_outputs["model"])
        assert scored.returncode == 0, scored.stderr
        media, body = scored.stdout.split("\n", 1)
        assert media == accept
        answer = json.loads(body.splitlines()[0])
        prediction = answer["predictions"][0] if accept == dag_contract.JSON else answer
        assert set(prediction) == set(dag_contract.shared_contract()["keys"]["prediction"].values())
        assert 0.0 <= prediction[dag_contract.PROBABILITY_KEY] <= 1.0


def test_the_transform_joins_under_the_key_the_scoring_task_reads() -> None:
    assert local_transform.JOINED_OUTPUT_KEY == TRANSFORM_OUTPUT_KEY == dag_contract.TRANSFORM_JOINED_OUTPUT_KEY
    transform = transform_request(SETTINGS, ScoringLayout(SETTINGS.base_uri, "20261126T060000Z"), job_name="j",
                                  model="m", id_column="CustomerID")
    assert transform["DataProcessing"]["OutputFilter"] == f"$['CustomerID','{local_transform.JOINED_OUTPUT_KEY}']"
    assert transform["TransformInput"]["ContentType"] == local_transform.JSON_LINES


def test_the_training_request_sends_as_csv_exactly_the_channels_the_script_reads_as_csv() -> None:
    channels = {name: LAYOUT.preprocessing_uri(name) for name in dag_contract.TRAINING_CHANNELS}
    request = train_request(SETTINGS, LAYOUT, job_name="j", image_uri="img", channels=channels)
    sent = {channel["ChannelName"]: channel.get("ContentType") for channel in request["InputDataConfig"]}
    assert {name for name, media in sent.items() if media == dag_contract.CSV} == set(dag_contract.CSV_CHANNELS)
    arguments = vars(training.parse_args([]))
    assert set(dag_contract.TRAINING_CHANNELS) <= set(arguments)  # the script has an option for every channel
    assert set(dag_contract.TRAINING_CHANNELS) <= set(dag_contract.PREPROCESSING_OUTPUTS)


def test_the_steps_write_the_outputs_and_files_the_dag_side_reads(sample_outputs: dict[str, Path]) -> None:
    files, keys = dag_contract.FILES, dag_contract.shared_contract()["keys"]
    requested = preprocess_request(SETTINGS, LAYOUT, job_name="j", image_uri="img", input_uri="s3://b/in",
                                   schema_uri="s3://b/schema.json")["ProcessingOutputConfig"]["Outputs"]
    written = {path.name for path in sample_outputs["out"].iterdir() if not path.name.startswith(".")}
    assert written == {output["OutputName"] for output in requested}
    assert {path.name for path in (sample_outputs["out"] / "profile").iterdir()} == {
        files["statistics"], files["constraints"]}
    quality = json.loads((sample_outputs["out"] / "quality" / files["data_quality"]).read_text())
    assert set(keys["data_quality"]) <= set(quality)

    evaluated = evaluate_request(SETTINGS, LAYOUT, job_name="j", image_uri="img", model_artifact_uri="s3://b/m",
                                 holdout_uri="s3://b/h")["ProcessingOutputConfig"]["Outputs"]
    assert [output["OutputName"] for output in evaluated] == [dag_contract.EVALUATION_OUTPUT]
    assert {path.name for path in sample_outputs["evaluation"].iterdir()} == {
        files["evaluation"], files["details"], files["drift"]}
    report = json.loads((sample_outputs["evaluation"] / files["evaluation"]).read_text())
    assert set(keys["evaluation"]) <= set(report)
    assert set(keys["drift"]) <= set(json.loads((sample_outputs["evaluation"] / files["drift"]).read_text()))


def test_the_champion_block_holds_what_the_gate_and_the_registry_read(tmp_path: Path,
                                                                      sample_outputs: dict[str, Path]) -> None:
    ran = run_script("evaluation.py", "--model", sample_outputs["model"],
                     "--holdout", sample_outputs["out"] / "holdout", "--champion", sample_outputs["model"],
                     "--champion-identifier", "models:/customer-churn/1", "--champion-version", "1",
                     "--no-details", "--no-drift", "--output-dir", tmp_path)
    assert ran.returncode == 0, ran.stderr
    champion = json.loads((tmp_path / dag_contract.FILES["evaluation"]).read_text())["champion"]
    assert champion["comparable"] and set(dag_contract.shared_contract()["keys"]["champion"]) <= set(champion)
