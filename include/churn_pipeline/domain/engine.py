"""Which engine runs a training run's jobs: scikit-learn on one instance, or Spark past it.

Pure: no AWS call, no Airflow import. ``stage_inputs`` chooses once per run, from the sizing estimate
it already computes (``domain.sizing``), and the choice travels in the staged payload, so that every
job task of the run builds its request for the same engine, and a retried task for the one its run
began with.

- ``sklearn``: the run is refused, one line per step, when a job will not fit its instance, naming
  the instance that would and ``engine=spark``.
- ``spark``: taken as asked; the Spark cluster of each step is its own setting.
- ``auto``: ``sklearn`` while every scikit-learn job fits its instance, ``spark`` where the run would
  otherwise be refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from churn_pipeline.domain.sagemaker_api import JobKind
from churn_pipeline.domain.sizing import SIZED_STEPS, InputSize, memory_refusal
from churn_pipeline.domain.steps import KIND_OF_STEP, SCORE, TRAIN

AUTO = "auto"
MODEL_ARCHIVE = "model.tar.gz"  # what either engine's training leaves in its model folder


class Engine(StrEnum):
    SKLEARN = "sklearn"
    SPARK = "spark"

    @property
    def registry_name(self) -> str:
        """How the model registry records the engine (``CustomerMetadataProperties.engine``)."""
        return REGISTRY_NAMES[self]

    @property
    def described(self) -> str:
        return DESCRIPTIONS[self]


REGISTRY_NAMES = {Engine.SKLEARN: "scikit-learn", Engine.SPARK: "spark-mllib"}
DESCRIPTIONS = {Engine.SKLEARN: "scikit-learn, one instance per job",
                Engine.SPARK: "Spark, SageMaker's Spark processing image"}
SPARK_REMEDY = "or run it on Spark with engine=spark (the run param or CHURN_ENGINE)"


class EngineRefusal(ValueError):
    """A run that asked for scikit-learn and will not fit its instances; one line per step."""


@dataclass(frozen=True)
class EngineChoice:
    """The run's engine, what was asked for and why it is this one, in words."""

    engine: Engine
    asked: str
    reason: str


def choose_engine(asked: str, size: InputSize, instance_types: Mapping[str, str],
                  settings_names: Mapping[str, str]) -> EngineChoice:
    """The engine of a run that asked for ``asked`` (auto, sklearn or spark), given its input's size
    and the instance type each scikit-learn step is configured with (``settings_names``: where each
    is set, for the refusal's remedy)."""
    if asked == Engine.SPARK:
        return EngineChoice(Engine.SPARK, asked, "engine=spark was asked for")
    if asked not in (AUTO, Engine.SKLEARN):
        raise ValueError(f"engine must be one of {AUTO}, {Engine.SKLEARN}, {Engine.SPARK}, not {asked!r}")
    refusals = {step: refusal for step in SIZED_STEPS
                if (refusal := memory_refusal(step, instance_types[step], size, settings_names[step]))}
    if asked == Engine.SKLEARN:
        if refusals:
            raise EngineRefusal("\n".join(f"{refusal}, {SPARK_REMEDY}; nothing was started"
                                          for refusal in refusals.values()))
        return EngineChoice(Engine.SKLEARN, asked, f"engine=sklearn was asked for, and {size.described()} fit "
                                                   "every step's instance")
    if refusals:
        return EngineChoice(Engine.SPARK, asked, f"auto chose Spark: for {size.described()} the scikit-learn job of "
                                                 f"{', '.join(refusals)} would not fit its instance "
                                                 f"({', '.join(instance_types[step] for step in refusals)})")
    return EngineChoice(Engine.SKLEARN, asked, f"auto chose scikit-learn: {size.described()} fit every step's "
                                               "instance")


def engine_record(choice: EngineChoice) -> dict[str, str]:
    """``engine.json``: the run's engine as the summary and the report show it."""
    return {"engine": choice.engine.value, "registry_name": choice.engine.registry_name, "asked": choice.asked,
            "reason": choice.reason}


def described_record(record: Mapping[str, object] | None) -> str:
    """One line for people from ``engine.json`` (a record that is not one reads as nothing: "")."""
    if not isinstance(record, Mapping) or record.get("engine") not in {item.value for item in Engine}:
        return ""
    engine = Engine(str(record["engine"]))
    reason = record.get("reason")
    return f"{engine.described}" + (f": {reason}" if isinstance(reason, str) and reason else "")


def is_everyday(record: Mapping[str, object] | None) -> bool:
    """Whether ``engine.json`` records the everyday case, scikit-learn because auto found that every
    job fits: what every run was before there were engines, so the run's summary gives it no line."""
    return isinstance(record, Mapping) and record.get("engine") == Engine.SKLEARN and record.get("asked") == AUTO


def engine_of_version(metadata: Mapping[str, object] | None) -> Engine:
    """The engine that trained a registered version, from its metadata (``CustomerMetadataProperties``
    on SageMaker, the version's tags in MLflow): how it is scored. A version registered before there
    were engines, without the key, is a scikit-learn model."""
    named = (metadata or {}).get("engine")
    for engine, registry_name in REGISTRY_NAMES.items():
        if named == registry_name:
            return engine
    if named is None:
        return Engine.SKLEARN
    raise ValueError(f"a model version names the engine {named!r}, which is neither "
                     f"{' nor '.join(REGISTRY_NAMES.values())}")


def job_kind(step: str, engine: Engine | str) -> JobKind:
    """The kind of job a step runs on an engine: on Spark every step is a Processing job, training and
    scoring too (the Spark image runs ``smspark-submit`` as a processing container)."""
    if Engine(engine) is Engine.SPARK and step in (TRAIN, SCORE):
        return JobKind.PROCESSING
    return KIND_OF_STEP[step]


def model_archive_uri(model_output: str, engine: Engine | str) -> str:
    """The trained model's ``model.tar.gz``, from the train job's ``model`` output: a training job names
    the archive itself, a Spark processing job the folder its driver wrote the archive to."""
    if Engine(engine) is Engine.SPARK:
        return f"{model_output.rstrip('/')}/{MODEL_ARCHIVE}"
    return model_output
