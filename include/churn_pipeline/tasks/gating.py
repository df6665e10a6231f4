"""``check_accuracy``: the quality gate reads the run's evaluation (and drift), decides under the
run's rules, records the decision, writes the run's report and chooses the branch."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.domain import gate
from churn_pipeline.domain.contract import FILES
from churn_pipeline.domain.costs import run_cost
from churn_pipeline.domain.layout import OutcomeLayout, RunLayout
from churn_pipeline.domain.sagemaker_api import JobKind
from churn_pipeline.domain.settings import Settings, load_settings
from churn_pipeline.domain.steps import EVALUATE, KIND_OF_STEP, PREPROCESS, SCORE_CHAMPION, TRAIN
from churn_pipeline.domain.xcom_keys import DECISION_KEY
from churn_pipeline.tasks._run import log, received, received_optional, says_why_it_failed

if TYPE_CHECKING:  # imported where used: the DAG file imports this module when the scheduler parses it
    from churn_pipeline.domain.payloads import GateDecision, JobResult
    from churn_pipeline.services.objectstore import ObjectStore


CONSOLE = "https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/{kind}/{name}"
CONSOLE_KINDS = {JobKind.PROCESSING: "processing-jobs", JobKind.TRAINING: "jobs"}


def _read_if_there(store: ObjectStore, uri: str) -> bytes | None:
    from churn_pipeline.services.objectstore import ObjectStoreError

    try:
        return store.read_bytes(uri)
    except ObjectStoreError:
        return None


def _href(store: ObjectStore, uri: str) -> str:
    """Where a person opens an artefact: the file itself locally, its S3 URI on AWS."""
    from churn_pipeline.services.objectstore import LocalObjectStore

    return store.path_for(uri).as_uri() if isinstance(store, LocalObjectStore) else uri


def report_links(settings: Settings, store: ObjectStore, layout: RunLayout,
                 jobs: dict[str, JobResult]) -> list[dict[str, str]]:
    """The run's artefacts and jobs (by step), for the report's last section."""
    from churn_pipeline.services.objectstore import LocalObjectStore

    evaluation = jobs[EVALUATE].output("evaluation")
    links = [{"label": "the run's folder", "href": _href(store, layout.run_uri)},
             {"label": FILES["evaluation"], "href": _href(store, f"{evaluation}/{FILES['evaluation']}")},
             {"label": FILES["drift"], "href": _href(store, f"{evaluation}/{FILES['drift']}")},
             {"label": "training data profile (statistics.json)",
              "href": _href(store, f"{jobs[PREPROCESS].output('profile')}/{FILES['statistics']}")},
             # one page over every cohort, rewritten by each outcome run: the latest report links the latest
             {"label": "outcomes of past scores (customer_churn_outcomes)",
              "href": _href(store, OutcomeLayout(settings.base_uri).page_uri)}]
    for step, result in jobs.items():
        if settings.backend == "local":
            assert isinstance(store, LocalObjectStore)
            href = (store.root / "jobs" / result.job_name / "output.log").as_uri()
            links.append({"label": f"{step} job {result.job_name} (log)", "href": href})
        else:
            href = CONSOLE.format(region=settings.region, kind=CONSOLE_KINDS[KIND_OF_STEP[step]], name=result.job_name)
            links.append({"label": f"{step} job {result.job_name} (SageMaker console)", "href": href})
    return links


def write_report(settings: Settings, store: ObjectStore, layout: RunLayout, decision: GateDecision,
                 jobs: dict[str, JobResult], run_id: str, dag_id: str) -> None:
    from churn_pipeline.report.html import ReportInputs, render_report  # at run time: matplotlib is heavy

    evaluation = jobs[EVALUATE].output("evaluation")
    inputs = ReportInputs.from_json(
        run_key=layout.key, run_id=run_id, dag_id=dag_id, backend=settings.backend,
        engine=_read_if_there(store, layout.engine_file_uri),
        decision=json.dumps(decision.to_xcom()).encode(),  # as it is stored: lists, not tuples
        evaluation=_read_if_there(store, f"{evaluation}/{FILES['evaluation']}"),
        details=_read_if_there(store, f"{evaluation}/{FILES['details']}"),
        drift=_read_if_there(store, f"{evaluation}/{FILES['drift']}") if decision.drift_mode != "off" else None,
        quality=_read_if_there(store, f"{jobs[PREPROCESS].output('quality')}/{FILES['data_quality']}"),
        links=report_links(settings, store, layout, jobs))
    store.write_bytes(layout.report_file_uri, render_report(inputs))
    log.info("report: %s", _href(store, layout.report_file_uri))


@says_why_it_failed
def choose_branch(*, staged: Any, preprocessing: Any, model: Any, evaluation: Any, on_pass: str, on_fail: str,
                  params: dict[str, Any], ti: Any, dag_run: Any, champion_scores: Any = None, **_: Any) -> str:
    """BranchPythonOperator callable: the task ``on_pass`` when the model passed, ``on_fail`` otherwise.

    ``staged``, ``preprocessing``, ``model`` and ``evaluation`` are the results of the staging task and
    of the three job tasks (the report links their jobs), ``champion_scores`` score_champion's where it
    ran (None where it was skipped); the DAG hands them over and names the branches.
    """
    from churn_pipeline.domain.payloads import JobResult, StagedInputs
    from churn_pipeline.services import backend

    settings = load_settings()
    try:
        rules = gate.GateRules.from_params(params)
    except ValueError as error:
        raise AirflowFailException(str(error)) from None
    jobs = {PREPROCESS: received(JobResult, preprocessing, "preprocessing job's result"),
            TRAIN: received(JobResult, model, "training job's result"),
            EVALUATE: received(JobResult, evaluation, "evaluation job's result")}
    scored_champion = received_optional(JobResult, champion_scores)
    if scored_champion is not None:  # a champion of the other engine was scored: its job is the run's too
        jobs[SCORE_CHAMPION] = scored_champion
    layout = RunLayout(settings.base_uri, received(StagedInputs, staged, "staged run").run_key)
    store = backend.object_store(settings)
    evaluation_prefix = jobs[EVALUATE].output("evaluation")
    evaluation_uri = f"{evaluation_prefix}/{FILES['evaluation']}"
    decision = gate.decide(_read_if_there(store, evaluation_uri), rules, evaluation_uri,
                           drift=_read_if_there(store, f"{evaluation_prefix}/{FILES['drift']}"),
                           report_uri=layout.report_file_uri)
    # what this run's jobs cost rides with the decision: into decision.json, the report and the version
    decision = dataclasses.replace(decision, run_cost=run_cost({step: job.cost or {"cost": None}
                                                                for step, job in jobs.items()}))
    store.write_bytes(layout.decision_file_uri, json.dumps(decision.to_xcom(), indent=2, sort_keys=True).encode())
    write_report(settings, store, layout, decision, jobs, dag_run.run_id, dag_run.dag_id)
    ti.xcom_push(key=DECISION_KEY, value=decision.to_xcom())
    branch = on_pass if decision.passed else on_fail
    log.info("gate: %s -> %s", "passed" if decision.passed else f"not passed ({', '.join(decision.reasons)})",
             branch)
    for sentence in decision.details:
        log.info("gate:   %s", sentence)
    return branch
