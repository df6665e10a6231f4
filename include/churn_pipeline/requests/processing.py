"""``CreateProcessingJob`` requests: preprocessing and evaluation, each running its script from the
run's code in the scikit-learn image. Pure: no AWS call, no Airflow import."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from churn_pipeline.domain import contract
from churn_pipeline.domain.gate import CompareMode, DriftMode
from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.payloads import ChampionLookup, ModelVersionRef
from churn_pipeline.domain.settings import Settings
from churn_pipeline.requests.common import SCRIPTS, container_network, instances, role, tags

PROCESSING_ROOT = "/opt/ml/processing"
CODE_DIR = f"{PROCESSING_ROOT}/input/code"
PREPROCESSING_OUTPUTS = contract.PREPROCESSING_OUTPUTS  # the folders the preprocessing script writes
CHAMPION_SCORES_OUTPUT = contract.CHAMPION_SCORES_OUTPUT  # a champion scored in its own engine's image


def _processing_input(name: str, uri: str, local_path: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def _processing_output(name: str, uri: str) -> dict[str, Any]:
    return {
        "OutputName": name,
        "S3Output": {"S3Uri": uri, "LocalPath": f"{PROCESSING_ROOT}/output/{name}", "S3UploadMode": "EndOfJob"},
    }


def processing_request(
    settings: Settings,
    layout: RunLayout,
    *,
    step: str,
    job_name: str,
    image_uri: str,
    inputs: Mapping[str, str],
    outputs: Mapping[str, str],
) -> dict[str, Any]:
    """A ``CreateProcessingJob`` request running ``include/scripts/<step script>`` from the run's code."""
    output_config: dict[str, Any] = {
        "Outputs": [_processing_output(name, uri) for name, uri in outputs.items()]}
    if settings.kms_key_id:
        output_config["KmsKeyId"] = settings.kms_key_id
    request: dict[str, Any] = {
        "ProcessingJobName": job_name,
        "ProcessingInputs": [_processing_input("code", layout.code_uri, CODE_DIR)]
        + [_processing_input(name, uri, f"{PROCESSING_ROOT}/input/{name}") for name, uri in inputs.items()],
        "ProcessingOutputConfig": output_config,
        "ProcessingResources": {"ClusterConfig": instances(settings, step)},
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_runtime_seconds},
        "AppSpecification": {
            "ImageUri": image_uri,
            "ContainerEntrypoint": ["python3", f"{CODE_DIR}/{SCRIPTS[step]}"],
        },
        "Environment": {"PYTHONUNBUFFERED": "1"},
        "RoleArn": role(settings),
        "Tags": tags(settings, layout),
    }
    network = container_network(settings)
    if network:  # a processing job takes the same fields inside its NetworkConfig
        request["NetworkConfig"] = network
    return request


def preprocess_request(settings: Settings, layout: RunLayout, *, job_name: str, image_uri: str,
                       input_uri: str, schema_uri: str) -> dict[str, Any]:
    return processing_request(
        settings, layout, step="preprocess", job_name=job_name, image_uri=image_uri,
        inputs={"data": input_uri, "schema": schema_uri},
        outputs={name: layout.preprocessing_uri(name) for name in PREPROCESSING_OUTPUTS},
    )


@dataclass(frozen=True)
class EvaluationInputs:
    """What the evaluation job compares the new model with: the champion (to score on the same
    customers) and the baseline profile (to measure drift against), or why it has none."""

    champion: ModelVersionRef | None = None
    champion_problem: str | None = None
    # the champion's scores on these customers, where its own engine scored it (score_champion): the
    # evaluation reads them instead of loading a model this image cannot load
    champion_scores_uri: str | None = None
    baseline: ModelVersionRef | None = None
    baseline_problem: str | None = None
    measure_drift: bool = True

    @classmethod
    def choose(cls, lookup: ChampionLookup, compare: CompareMode, drift: DriftMode) -> EvaluationInputs:
        """Off means off: no champion is sent when the comparison is off, no baseline when drift is."""
        compared = compare is not CompareMode.OFF
        measured = drift is not DriftMode.OFF
        return cls(champion=lookup.champion if compared else None,
                   champion_problem=lookup.champion_problem if compared else None,
                   baseline=lookup.baseline if measured else None,
                   baseline_problem=lookup.baseline_problem if measured else None,
                   measure_drift=measured)


def baseline_comparison(compared: EvaluationInputs) -> tuple[dict[str, str], list[str]]:
    """The baseline profile as both engines' evaluations take it: its ``statistics.json`` folder as the
    ``baseline`` input, or ``--baseline-unavailable`` with why it cannot be used; who it is either way;
    and ``--no-drift`` when drift is off. The scripts read the ``baseline`` input by default."""
    inputs: dict[str, str] = {}
    arguments: list[str] = []
    baseline = compared.baseline
    if baseline is not None:
        arguments += ["--baseline-identifier", baseline.identifier, "--baseline-version", str(baseline.version)]
        if baseline.statistics_uri:
            arguments += ["--baseline-uri", baseline.statistics_uri]
        if compared.baseline_problem or not baseline.statistics_uri:
            arguments += ["--baseline-unavailable", compared.baseline_problem or "it has no data profile"]
        else:
            inputs["baseline"] = baseline.statistics_uri
    if not compared.measure_drift:
        arguments.append("--no-drift")
    return inputs, arguments


def evaluate_request(settings: Settings, layout: RunLayout, *, job_name: str, image_uri: str,
                     model_artifact_uri: str, holdout_uri: str,
                     compared: EvaluationInputs | None = None) -> dict[str, Any]:
    """The evaluation job: the new model on this run's held-out customers, with the champion's model
    and the baseline profile as optional inputs (and who they are as arguments, for the records)."""
    compared = compared or EvaluationInputs()
    inputs = {"model": model_artifact_uri, "holdout": holdout_uri}
    arguments: list[str] = []
    champion = compared.champion
    if champion is not None:
        arguments += ["--champion-identifier", champion.identifier, "--champion-version", str(champion.version)]
        if compared.champion_problem:
            arguments += ["--champion-unavailable", compared.champion_problem]
        elif compared.champion_scores_uri:
            inputs[CHAMPION_SCORES_OUTPUT] = compared.champion_scores_uri
            arguments += ["--champion-scores", f"{PROCESSING_ROOT}/input/{CHAMPION_SCORES_OUTPUT}"]
        else:
            inputs["champion"] = champion.model_uri
    baseline_inputs, baseline_arguments = baseline_comparison(compared)
    inputs.update(baseline_inputs)
    arguments += baseline_arguments
    request = processing_request(
        settings, layout, step="evaluate", job_name=job_name, image_uri=image_uri,
        inputs=inputs, outputs={contract.EVALUATION_OUTPUT: layout.evaluation_uri},
    )
    if arguments:
        request["AppSpecification"]["ContainerArguments"] = arguments
    return request


def champion_scores_request(settings: Settings, layout: RunLayout, *, job_name: str, image_uri: str,
                            model_artifact_uri: str, holdout_uri: str) -> dict[str, Any]:
    """A scikit-learn champion scoring a Spark run's held-out customers (the part files Spark wrote),
    on the evaluate step's instances: ``evaluation.py --write-scores``, its pairs under the run's
    ``champion-scores`` prefix for the Spark evaluation to value."""
    request = processing_request(
        settings, layout, step="evaluate", job_name=job_name, image_uri=image_uri,
        inputs={"model": model_artifact_uri, "holdout": holdout_uri},
        outputs={CHAMPION_SCORES_OUTPUT: layout.champion_scores_uri},
    )
    request["AppSpecification"]["ContainerArguments"] = [
        "--write-scores", "--output-dir", f"{PROCESSING_ROOT}/output/{CHAMPION_SCORES_OUTPUT}"]
    return request
