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
from dataclasses import replace
from typing import Any

from churn_pipeline.domain.economics import economics_from_params, training_hyperparameters
from churn_pipeline.domain.engine import Engine, model_archive_uri
from churn_pipeline.domain.gate import CompareMode, DriftMode
from churn_pipeline.domain.layout import RunLayout, ScoringLayout, model_name
from churn_pipeline.domain.model_defaults import default_hyperparameters
from churn_pipeline.domain.payloads import ChampionLookup, JobResult, Payload, StagedInputs, StagedScoring
from churn_pipeline.domain.settings import Settings
from churn_pipeline.domain.steps import EVALUATE, INPUT_ROLES, OPTIONAL_ROLES, PREPROCESS, SCORE, SCORE_CHAMPION, TRAIN
from churn_pipeline.requests.processing import (
    CHAMPION_SCORES_OUTPUT,
    EvaluationInputs,
    champion_scores_request,
    evaluate_request,
    preprocess_request,
)
from churn_pipeline.requests.spark import (
    spark_champion_scores_request,
    spark_evaluate_request,
    spark_holdout_uri,
    spark_preprocess_request,
    spark_score_request,
    spark_train_request,
)
from churn_pipeline.requests.training import TRAINING_CHANNELS, train_request
from churn_pipeline.requests.transform import create_model_request, transform_request

# What each step's task stages from (its run's key, image and inputs), and the payload of each input
# role (domain.steps.INPUT_ROLES names the roles of each step).
STAGED_PAYLOAD: dict[str, type[Payload]] = {PREPROCESS: StagedInputs, TRAIN: StagedInputs, EVALUATE: StagedInputs,
                                           SCORE: StagedScoring, SCORE_CHAMPION: StagedInputs}
PAYLOAD_OF_ROLE: dict[str, type[Payload]] = {"preprocessing": JobResult, "model": JobResult,
                                             "champion": ChampionLookup, "champion_scores": JobResult}


def read_inputs(step: str, staged: Any, inputs: Mapping[str, Any]) -> tuple[Payload, dict[str, Payload]]:
    """The staged payload and the upstream payloads of ``step``, read back from their XCom values with
    their shapes checked (``PayloadError`` names what is missing). An optional role whose task was
    skipped (its result None) is left out."""
    return (STAGED_PAYLOAD[step].from_xcom(staged),
            {role: PAYLOAD_OF_ROLE[role].from_xcom(inputs[role]) for role in INPUT_ROLES[step]
             if not (role in OPTIONAL_ROLES and inputs.get(role) is None)})


def skip_reason(step: str, staged: Payload, inputs: Mapping[str, Payload], params: Mapping[str, Any]) -> str | None:
    """Why ``step`` has nothing to do on this run, or None: only ``score_champion`` may, where there is
    no champion to compare with, it cannot be used, or it is of the run's own engine (the evaluation
    then scores it itself)."""
    if step != SCORE_CHAMPION:
        return None
    assert isinstance(staged, StagedInputs)
    lookup = inputs["champion"]
    assert isinstance(lookup, ChampionLookup)
    compared = _compared(lookup, params)
    if compared.champion is None:
        return ("the comparison with the champion is off (compare_with_champion=off)" if lookup.champion
                else "there is no approved champion to compare with")
    if compared.champion_problem:
        return f"the champion cannot be used: {compared.champion_problem}"
    if Engine(compared.champion.engine) is Engine(staged.engine):
        return f"the champion is a {Engine(staged.engine).registry_name} model, as this run's is: evaluate scores it"
    return None


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
    if step == SCORE_CHAMPION:
        return _champion_scores_request(settings, name, staged, layout, inputs)
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
                                holdout_uri=preprocessing.output("holdout"),
                                compared=_compared(lookup, params, staged, inputs.get("champion_scores")))
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
                                      compared=_compared(lookup, params, staged, inputs.get("champion_scores")))
    raise ValueError(f"the Spark engine has no {step!r} step in the training run")


def _hyperparameters(params: Mapping[str, Any]) -> dict[str, float]:
    """The forest's defaults and the run's campaign figures, as both engines' training scripts take them."""
    return {**default_hyperparameters(), **training_hyperparameters(economics_from_params(params))}


def _champion_scores_request(settings: Settings, name: str, staged: StagedInputs, layout: RunLayout,
                             inputs: Mapping[str, Payload]) -> dict[str, Any]:
    """``score_champion``: the champion scores this run's held-out customers in its own engine's image,
    wherever this run's engine wrote them."""
    preprocessing, lookup = inputs["preprocessing"], inputs["champion"]
    assert isinstance(preprocessing, JobResult) and isinstance(lookup, ChampionLookup)
    champion = lookup.champion
    if champion is None or not lookup.champion_image_uri:
        raise ValueError("score_champion needs a champion of the other engine and its image (find_champion)")
    if Engine(champion.engine) is Engine.SPARK:  # a scikit-learn run: its holdout is preprocessing's output
        return spark_champion_scores_request(settings, layout, job_name=name, image_uri=lookup.champion_image_uri,
                                             model_archive_uri=champion.model_uri,
                                             holdout_uri=preprocessing.output("holdout"))
    return champion_scores_request(settings, layout, job_name=name, image_uri=lookup.champion_image_uri,
                                   model_artifact_uri=champion.model_uri, holdout_uri=spark_holdout_uri(layout))


def _compared(lookup: ChampionLookup, params: Mapping[str, Any], staged: StagedInputs | None = None,
              scored: Payload | None = None) -> EvaluationInputs:
    """What the evaluation compares with. A champion of the other engine comes as its scores
    (``score_champion``'s output); without them it is not comparable, and says why."""
    compared = EvaluationInputs.choose(lookup, CompareMode(params.get("compare_with_champion", "enforce")),
                                       DriftMode(params.get("drift_mode", "warn")))
    champion = compared.champion
    if staged is None or champion is None or compared.champion_problem:
        return compared
    if Engine(champion.engine) is Engine(staged.engine):
        return compared
    if isinstance(scored, JobResult):
        return replace(compared, champion_scores_uri=scored.output(CHAMPION_SCORES_OUTPUT))
    return replace(compared, champion_problem=f"it is a {Engine(champion.engine).registry_name} model, which this "
                                              f"run's image cannot load, and score_champion did not score it")
