"""The request of each job step, from the staged inputs, the upstream tasks' real results and the run's
params: the entry the job operators call. Pure: no AWS call, no Airflow import."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from churn_pipeline.domain.gate import CompareMode, DriftMode
from churn_pipeline.domain.layout import RunLayout, ScoringLayout, model_name
from churn_pipeline.domain.payloads import (
    EVALUATE_TASK,
    FIND_CHAMPION_TASK,
    PREPROCESS_TASK,
    TRAIN_TASK,
    ChampionLookup,
    JobResult,
    Payload,
    StagedInputs,
    StagedScoring,
)
from churn_pipeline.domain.settings import Settings
from churn_pipeline.requests.common import SCORE_STEP
from churn_pipeline.requests.processing import EvaluationInputs, evaluate_request, preprocess_request
from churn_pipeline.requests.training import TRAINING_CHANNELS, train_request
from churn_pipeline.requests.transform import create_model_request, transform_request


def request_for_step(step: str, settings: Settings, name: str, staged: Payload, upstream: Mapping[str, Payload],
                     params: Mapping[str, Any]) -> dict[str, Any]:
    """The request for ``step``, from the staged inputs, the upstream tasks' real results and the
    run's params. The score step's request is the pair the provider's transform operator takes:
    ``{"Model": CreateModel, "Transform": CreateTransformJob}``."""
    if step == SCORE_STEP:
        assert isinstance(staged, StagedScoring)
        scoring = ScoringLayout(settings.base_uri, staged.run_key)
        model = model_name(settings.job_prefix, staged.run_key)
        return {"Model": create_model_request(settings, scoring, name=model, champion=staged.champion),
                "Transform": transform_request(settings, scoring, job_name=name, model=model,
                                               id_column=staged.id_column)}
    assert isinstance(staged, StagedInputs)
    layout = RunLayout(settings.base_uri, staged.run_key)
    if step == PREPROCESS_TASK:
        return preprocess_request(settings, layout, job_name=name, image_uri=staged.image_uri,
                                  input_uri=staged.input_uri, schema_uri=staged.schema_uri)
    preprocessing = upstream[PREPROCESS_TASK]
    assert isinstance(preprocessing, JobResult)
    if step == TRAIN_TASK:
        channels = {channel: preprocessing.output(channel) for channel in TRAINING_CHANNELS}
        return train_request(settings, layout, job_name=name, image_uri=staged.image_uri, channels=channels)
    if step == EVALUATE_TASK:
        trained, lookup = upstream[TRAIN_TASK], upstream[FIND_CHAMPION_TASK]
        assert isinstance(trained, JobResult) and isinstance(lookup, ChampionLookup)
        compared = EvaluationInputs.choose(lookup, CompareMode(params.get("compare_with_champion", "enforce")),
                                           DriftMode(params.get("drift_mode", "warn")))
        return evaluate_request(settings, layout, job_name=name, image_uri=staged.image_uri,
                                model_artifact_uri=trained.output("model"),
                                holdout_uri=preprocessing.output("holdout"), compared=compared)
    raise ValueError(f"unknown step {step!r}")
