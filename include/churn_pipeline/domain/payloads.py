"""What the tasks hand to each other through XCom, typed and in one place.

Each payload is a frozen dataclass that goes into XCom as a plain JSON object (``to_xcom``) and is
read back with its shape checked (``from_xcom``), so a task never digs in another task's dict by
keys repeated across modules. No task ids: the DAG files name their tasks and hand each task its
upstream payloads. No Airflow import: the builders that take payloads stay pure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from churn_pipeline.domain.sagemaker_api import COMPLETED, JobKind

P = TypeVar("P", bound="Payload")


class PayloadError(ValueError):
    """An XCom value that is missing or does not have the payload's shape."""


@dataclass(frozen=True)
class Payload:
    def to_xcom(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_xcom(cls: type[P], value: Any) -> P:
        if not isinstance(value, Mapping):
            raise PayloadError(f"expected a {cls.__name__} object, got {type(value).__name__}")
        names = {item.name for item in dataclasses.fields(cls)}
        required = {item.name for item in dataclasses.fields(cls)
                    if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING}
        missing = sorted(required - set(value))
        if missing:
            raise PayloadError(f"{cls.__name__} lacks {', '.join(missing)}")
        return cls(**{name: cls._read(name, value[name]) for name in names if name in value})

    @classmethod
    def _read(cls, name: str, value: Any) -> Any:
        """Turn a JSON value back into the field's type (tuples come back from XCom as lists)."""
        return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class ExtractedCustomers(Payload):
    """``extract_customers``: the customers it wrote as Parquet under the run's own input prefix."""

    run_key: str
    input_uri: str  # the prefix preprocessing reads: every object below it is this extract's
    objects: tuple[str, ...]
    rows: int
    source: str  # the connection, in words: "postgres connection 'churn_source'"
    transfer: str  # how the customers left the source: query, unload or download


@dataclass(frozen=True)
class StagedInputs(Payload):
    """``stage_inputs``: the run's key and where its inputs, code and image are."""

    run_key: str
    run_uri: str
    input_uri: str
    schema_uri: str
    code_uri: str
    image_uri: str
    # where the customers came from, in words: the extract's source and prefix, else input_uri as given
    data_source: str | None = None
    # the run's engine (domain.engine: sklearn or spark), chosen once by stage_inputs, and why; image_uri
    # is that engine's image. A payload from before there were engines ran scikit-learn.
    engine: str = "sklearn"
    engine_reason: str | None = None


@dataclass(frozen=True)
class JobResult(Payload):
    """A job task: the real job name (never recomputed downstream), its status and artefact URIs."""

    job_name: str
    status: str
    attempt: int
    reused: bool
    outputs: Mapping[str, str]
    metrics: Mapping[str, float] = field(default_factory=dict)
    cost: Mapping[str, Any] | None = None  # domain.costs.job_cost: billable seconds, instances, price, cost

    @classmethod
    def from_description(cls, kind: JobKind, description: Mapping[str, Any], *, reused: bool,
                         attempt: int, prices: Mapping[str, float] | None = None) -> JobResult:
        from churn_pipeline.domain.costs import job_cost

        metrics: dict[str, float] = {}
        if kind is JobKind.PROCESSING:
            outputs = {item["OutputName"]: item["S3Output"]["S3Uri"]
                       for item in description["ProcessingOutputConfig"]["Outputs"]}
        elif kind is JobKind.TRANSFORM:
            outputs = {"scores": description["TransformOutput"]["S3OutputPath"]}
        else:
            outputs = {"model": description["ModelArtifacts"]["S3ModelArtifacts"]}
            metrics = {item["MetricName"]: float(item["Value"]) for item in description.get("FinalMetricDataList", [])}
        return cls(job_name=description[kind.name_field], status=description[kind.status_field], attempt=attempt,
                   reused=reused, outputs=outputs, metrics=metrics,
                   cost=job_cost(kind, description, prices) if prices is not None else None)

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise PayloadError(f"job {self.job_name} has no output '{name}' (it has {', '.join(self.outputs)})") \
                from None


@dataclass(frozen=True)
class JobFailure(Payload):
    """Pushed under ``FAILURE_KEY`` by a job task whose job failed, or by ``extract_customers`` when its
    source failed: what the notification quotes."""

    job_name: str  # the job; for extract_customers, the source in words
    reason: str


@dataclass(frozen=True)
class ModelVersionRef(Payload):
    """A registered model version, as later runs need it: to score it, and to measure drift against
    the data it was trained on."""

    version: int
    identifier: str  # the model package ARN, or the MLflow models:/ URI
    approval_status: str
    model_uri: str  # its model.tar.gz
    statistics_uri: str | None = None  # the profile of its training data (statistics.json), if it has one
    metrics: Mapping[str, float] = field(default_factory=dict)  # as measured when it was registered
    run_key: str | None = None  # the run that trained it
    engine: str = "sklearn"  # domain.engine.Engine that trained it: how it is scored (engine_of_version)


@dataclass(frozen=True)
class ChampionLookup(Payload):
    """``find_champion``: the champion (newest approved version) and the drift baseline (the champion,
    or until there is one the newest registered version); each None when there is none."""

    champion: ModelVersionRef | None = None
    baseline: ModelVersionRef | None = None
    champion_problem: str | None = None  # why the champion cannot be used (its model is gone), if so
    baseline_problem: str | None = None  # why the baseline cannot be used (it has no profile), if so
    # the image of the champion's engine, where that is not the run's: score_champion scores it there
    champion_image_uri: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        return {"champion": self.champion.to_xcom() if self.champion else None,
                "baseline": self.baseline.to_xcom() if self.baseline else None,
                "champion_problem": self.champion_problem, "baseline_problem": self.baseline_problem,
                "champion_image_uri": self.champion_image_uri}

    @classmethod
    def _read(cls, name: str, value: Any) -> Any:
        if name in ("champion", "baseline") and value is not None:
            return ModelVersionRef.from_xcom(value)
        return super()._read(name, value)


@dataclass(frozen=True)
class StagedScoring(Payload):
    """``stage_customers``: the scoring run's key, the champion it scores with, and its customers as
    the transform job reads them."""

    run_key: str
    image_uri: str
    input_uri: str  # the JSON-lines customers (one file under a prefix)
    customers: int  # unique customers to score
    dropped_duplicates: int
    id_column: str | None
    champion: ModelVersionRef
    engine: str = "sklearn"  # the champion's: Batch Transform scores a scikit-learn model, a Spark job a Spark one

    @classmethod
    def _read(cls, name: str, value: Any) -> Any:
        if name == "champion":
            return ModelVersionRef.from_xcom(value)
        return super()._read(name, value)


@dataclass(frozen=True)
class GateDecision(Payload):
    """``check_accuracy``: pass or not, and why, in words and in numbers, under which rules."""

    passed: bool
    reason: str  # the first failing rule's REASON_* (churn_pipeline.domain.gate), "passed" otherwise
    detail: str  # the first failing rule's sentence, or why it passed
    threshold: float
    evaluation_uri: str
    accuracy: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()  # every failing rule's REASON_*
    details: tuple[str, ...] = ()  # one sentence per rule, passed or not, for people
    champion_metric: str = "roc_auc"
    min_improvement: float = 0.0
    compare_with_champion: str = "enforce"
    drift_mode: str = "warn"
    champion: Mapping[str, Any] | None = None  # evaluation.json's champion block
    drifted_features: tuple[str, ...] = ()  # features at level "drift"
    report_uri: str | None = None
    # evaluation.json's economics and calibration blocks: the contact threshold chosen on validation,
    # the campaign on the test split, whether a calibrator is applied (registered with the version)
    campaign: Mapping[str, Any] | None = None
    run_cost: Mapping[str, Any] | None = None  # domain.costs.run_cost of the run's three jobs


@dataclass(frozen=True)
class RegisteredVersion(Payload):
    """``register_model``: the version this run registered (or found, when it already had one)."""

    version: int
    identifier: str  # the model package ARN, or the MLflow models:/ URI
    approval_status: str
    created: bool  # False when this run's version already existed
