"""The request of each job step, from what the step's task receives: the staged run (or scoring run),
the upstream results it is built from, and the run's params. The entry the job operators call. Pure: no
AWS call, no Airflow import.

What a step is built from is named by role ("preprocessing", "model", "champion"; ``domain.steps``),
never by task id: the DAG file hands each job task its upstream results (``XComArg``s), so the DAG's
edges are written once, in the DAG, and a task wired to the wrong inputs fails when the DAG is parsed
(``domain.steps.check_inputs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from churn_pipeline.domain.economics import economics_from_params, training_hyperparameters
from churn_pipeline.domain.engine import Engine, model_archive_uri
from churn_pipeline.domain.gate import CompareMode, DriftMode
from churn_pipeline.domain.layout import RunLayout, ScoringLayout, model_name
from churn_pipeline.domain.model_defaults import default_hyperparameters
from churn_pipeline.domain.payloads import ChampionLookup, JobResult, Payload, StagedInputs, StagedScoring
from churn_pipeline.domain.settings import Settings
from churn_pipeline.domain.steps import EVALUATE, INPUT_ROLES, PREPROCESS, SCORE, TRAIN
from churn_pipeline.requests.processing import EvaluationInputs, evaluate_request, preprocess_request
from churn_pipeline.requests.spark import (
    spark_evaluate_request,
    spark_preprocess_request,
    spark_score_request,
    spark_train_request,
)
from churn_pipeline.requests.training import TRAINING_CHANNELS, train_request
from churn_pipeline.requests.transform import create_model_request, transform_request

# What each step's task stages from (its run's key, image and inputs), and the payload of each input
# role (domain.steps.INPUT_ROLES names the roles of each step).
STAGED_PAYLOAD: dict[str, type[Payload]] = {PREPROCESS: StagedInputs, TRAIN: StagedInputs, EVALUATE: StagedInputs,
                                           SCORE: StagedScoring}
PAYLOAD_OF_ROLE: dict[str, type[Payload]] = {"preprocessing": JobResult, "model": JobResult,
                                             "champion": ChampionLookup}


def read_inputs(step: str, staged: Any, inputs: Mapping[str, Any]) -> tuple[Payload, dict[str, Payload]]:
    """The staged payload and the upstream payloads of ``step``, read back from their XCom values with
    their shapes checked (``PayloadError`` names what is missing)."""
    return (STAGED_PAYLOAD[step].from_xcom(staged),
            {role: PAYLOAD_OF_ROLE[role].from_xcom(inputs[role]) for role in INPUT_ROLES[step]})


def request_for_step(step: str, settings: Settings, name: str, staged: Payload, inputs: Mapping[str, Payload],
                     params: Mapping[str, Any]) -> dict[str, Any]:
    """The request for ``step``, for the engine the run was staged with (a Spark run's every step is a
    processing job of the Spark image). The score step's request is the pair the provider's transform
    operator takes: ``{"Model": CreateModel, "Transform": CreateTransformJob}``, or, for a Spark
    champion, a processing job of the Spark image."""
    if step == SCORE:
        assert isinstance(staged, StagedScoring)
        scoring = ScoringLayout(settings.base_uri, staged.run_key)
        if Engine(staged.engine) is Engine.SPARK:  # a Spark champion: a processing job of the Spark image
            return spark_score_request(settings, scoring, job_name=name, image_uri=staged.image_uri,
                                       model_archive_uri=staged.champion.model_uri)
        model = model_name(settings.job_prefix, staged.run_key)
        return {"Model": create_model_request(settings, scoring, name=model, champion=staged.champion),
                "Transform": transform_request(settings, scoring, job_name=name, model=model,
                                               id_column=staged.id_column)}
    assert isinstance(staged, StagedInputs)
    layout = RunLayout(settings.base_uri, staged.run_key)
    if Engine(staged.engine) is Engine.SPARK:
        return _spark_request_for_step(step, settings, name, staged, layout, inputs, params)
    if step == PREPROCESS:
        return preprocess_request(settings, layout, job_name=name, image_uri=staged.image_uri,
                                  input_uri=staged.input_uri, schema_uri=staged.schema_uri)
    preprocessing = inputs["preprocessing"]
    assert isinstance(preprocessing, JobResult)
    if step == TRAIN:
        channels = {channel: preprocessing.output(channel) for channel in TRAINING_CHANNELS}
        return train_request(settings, layout, job_name=name, image_uri=staged.image_uri, channels=channels,
                             hyperparameters=_hyperparameters(params))
    if step == EVALUATE:
        trained, lookup = inputs["model"], inputs["champion"]
        assert isinstance(trained, JobResult) and isinstance(lookup, ChampionLookup)
        return evaluate_request(settings, layout, job_name=name, image_uri=staged.image_uri,
                                model_artifact_uri=trained.output("model"),
                                holdout_uri=preprocessing.output("holdout"), compared=_compared(lookup, params))
    raise ValueError(f"unknown step {step!r}")


def _spark_request_for_step(step: str, settings: Settings, name: str, staged: StagedInputs, layout: RunLayout,
                            inputs: Mapping[str, Payload], params: Mapping[str, Any]) -> dict[str, Any]:
    """The Spark engine's request for ``step``: its data sets are the run layout's prefixes, which
    Spark reads and writes itself; the small files come from the upstream jobs' outputs."""
    if step == PREPROCESS:
        return spark_preprocess_request(settings, layout, job_name=name, image_uri=staged.image_uri,
                                        input_uri=staged.input_uri, schema_uri=staged.schema_uri)
    preprocessing = inputs["preprocessing"]
    assert isinstance(preprocessing, JobResult)
    if step == TRAIN:
        return spark_train_request(settings, layout, job_name=name, image_uri=staged.image_uri,
                                   preprocessor_uri=preprocessing.output("preprocessor"),
                                   hyperparameters=_hyperparameters(params))
    if step == EVALUATE:
        trained, lookup = inputs["model"], inputs["champion"]
        assert isinstance(trained, JobResult) and isinstance(lookup, ChampionLookup)
        return spark_evaluate_request(settings, layout, job_name=name, image_uri=staged.image_uri,
                                      model_archive_uri=model_archive_uri(trained.output("model"), Engine.SPARK),
                                      compared=_compared(lookup, params))
    raise ValueError(f"the Spark engine has no {step!r} step in the training run")


def _hyperparameters(params: Mapping[str, Any]) -> dict[str, float]:
    """The forest's defaults and the run's campaign figures, as both engines' training scripts take them."""
    return {**default_hyperparameters(), **training_hyperparameters(economics_from_params(params))}


def _compared(lookup: ChampionLookup, params: Mapping[str, Any]) -> EvaluationInputs:
    return EvaluationInputs.choose(lookup, CompareMode(params.get("compare_with_champion", "enforce")),
                                   DriftMode(params.get("drift_mode", "warn")))
