"""
# Customer churn: review a registered version in Airflow

Every version `register_model` registers starts a run of this DAG (the `churn_model_version` asset),
so a waiting review never holds the nightly DAG. The version's question waits under **Required
Actions**, with the evidence in its body: the gate's decision and reasons, the metrics beside the
champion's, drift, the business figures and the report's link.

| task | does |
| --- | --- |
| `prepare_review` | one question per registered version; tells the team where to answer (`review_requested`) |
| `review_version` | the question: Approve or Reject, with a comment; by `CHURN_REVIEW_APPROVERS` when set |
| `record_reviews` | writes each answer to the registry (who, when, why); an approval emits `churn_champion` |

Unanswered after `CHURN_REVIEW_TIMEOUT_DAYS`, a question rejects its version and says so. A rejection
moves nothing and schedules no scoring; an approval makes the version the champion and schedules
scoring once. `review_version` has one retry: Airflow's scheduler can fail a waiting task on a stale
executor report (apache/airflow#71580); its retry asks again. Airflow before 3.1 has no
human-in-the-loop operators: there this file defines no DAG, and versions are approved as before
(`churn approve`, `customer_churn_approval`, SageMaker).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.exceptions import AirflowOptionalProviderFeatureException
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param, XComArg

from churn_pipeline.domain.review import APPROVE, REJECT
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.operators.assets import champion_approvals, model_version_asset
from churn_pipeline.tasks.review import (
    COMMENT_PARAM,
    EVIDENCE_KEY,
    REVIEW_TASK,
    questions_for_review,
    record_review_answers,
)

try:
    from airflow.providers.standard.operators import hitl
except (ImportError, AirflowOptionalProviderFeatureException):  # before Airflow 3.1: no human-in-the-loop
    hitl = None  # type: ignore[assignment]

SETTINGS = load_settings()  # environment variables only: no AWS call, no heavy import

if hitl is not None:
    with DAG(
        dag_id="customer_churn_review",
        description="Approve or reject each registered churn model version, with its evidence, in Airflow",
        schedule=[model_version_asset()],
        start_date=pendulum.datetime(2026, 1, 1, tz=SETTINGS.timezone),
        catchup=False,
        doc_md=__doc__,
        tags=["ml", "churn", "approval"],
        default_args=SETTINGS.task_defaults,
    ) as dag:
        prepare_review = PythonOperator(task_id="prepare_review", python_callable=questions_for_review)
        review_version = hitl.HITLOperator.partial(
            task_id=REVIEW_TASK, options=[APPROVE, REJECT], defaults=[REJECT],
            params={COMMENT_PARAM: Param("", type="string", title="Comment", description="why (kept in the registry)")},
            assigned_users=[{"id": user, "name": user} for user in SETTINGS.review_approvers] or None,
            response_timeout=SETTINGS.review_timeout,
            execution_timeout=None,  # the wait is response_timeout's; a task time limit would cut it short
            retries=1, retry_delay=timedelta(seconds=min(SETTINGS.retry_delay_seconds, 30)),
        ).expand_kwargs(prepare_review.output)
        record_reviews = PythonOperator(
            task_id="record_reviews", python_callable=record_review_answers,
            op_kwargs={"evidence": XComArg(prepare_review, key=EVIDENCE_KEY), "answers": review_version.output},
            outlets=[champion_approvals()])
