"""The pipeline's job steps: the kinds of work a job task does, which name its settings (instance type
per step), its script and its job names, and what each is built from. A step is not a task id: the
DAG files name their tasks. Light on purpose: the DAG files import it when the scheduler parses them."""

from __future__ import annotations

from collections.abc import Iterable

from churn_pipeline.domain.sagemaker_api import JobKind

PREPROCESS = "preprocess"
TRAIN = "train"
EVALUATE = "evaluate"
SCORE = "score"  # the scoring DAG's Batch Transform
STEPS = (PREPROCESS, TRAIN, EVALUATE, SCORE)  # the steps with settings of their own (instance type, cluster)
# The champion of the other engine scoring this run's held-out customers in its own image, for the
# evaluation to compare with (a Spark image cannot load a scikit-learn model, nor the reverse). It runs
# the champion's engine's evaluation script, on the evaluate step's instances.
SCORE_CHAMPION = "score-champion"
KIND_OF_STEP = {PREPROCESS: JobKind.PROCESSING, TRAIN: JobKind.TRAINING, EVALUATE: JobKind.PROCESSING,
                SCORE: JobKind.TRANSFORM, SCORE_CHAMPION: JobKind.PROCESSING}

# What each step's request is built from besides the staged run: the upstream results, by role. The
# DAG file hands a job task one result per role (``inputs={"model": train.output, ...}``).
INPUT_ROLES: dict[str, tuple[str, ...]] = {
    PREPROCESS: (),
    TRAIN: ("preprocessing",),
    EVALUATE: ("preprocessing", "model", "champion", "champion_scores"),
    SCORE: (),
    SCORE_CHAMPION: ("preprocessing", "champion"),
}
# Roles whose task may be skipped (its result is then None): the champion's scores exist only where
# the champion is of the other engine.
OPTIONAL_ROLES = frozenset({"champion_scores"})


class WiringError(ValueError):
    """A job task given other inputs than its step is built from: a DAG that cannot run."""


def check_inputs(step: str, roles: Iterable[str]) -> None:
    """Refuse, when the DAG is parsed, a job task whose inputs are not exactly its step's roles."""
    if step not in INPUT_ROLES:
        raise WiringError(f"unknown step {step!r}; one of {', '.join(INPUT_ROLES)}")
    expected, given = set(INPUT_ROLES[step]), set(roles)
    if expected != given:
        missing, unknown = sorted(expected - given), sorted(given - expected)
        parts = ([f"lacks {', '.join(missing)}"] if missing else []) + (
            [f"has no use for {', '.join(unknown)}"] if unknown else [])
        raise WiringError(f"the {step} step's task {' and '.join(parts)} (it is built from "
                          f"{', '.join(sorted(expected)) or 'the staged run alone'})")
