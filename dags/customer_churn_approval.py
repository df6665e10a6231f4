"""
# Customer churn: approve a registered version (local backend)

Trigger with the version to approve (or reject). The newest approved version is the champion that
new models must beat and that scores the customers; an approval (and only an approval) emits the
`churn_champion` asset event, which schedules `customer_churn_scoring` at once. Each registered
version also waits for a decision in `customer_churn_review`, with its evidence (Airflow 3.1+); both
end in the same registry update. On the sagemaker backend, approve there or in SageMaker:
EventBridge brings a SageMaker approval to the same asset.

Its one task is not retried: an approval is a person's decision, and one that fails (a version that
does not exist, say) is reported at once for the person to correct, not repeated.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from churn_pipeline.domain.run_params import approval_params
from churn_pipeline.domain.settings import NON_JOB_TASK_TIMEOUT, load_settings
from churn_pipeline.operators.assets import champion_approvals
from churn_pipeline.operators.params import airflow_params
from churn_pipeline.services.registry import APPROVAL_STATUSES, APPROVED
from churn_pipeline.tasks.approval import approve_version

SETTINGS = load_settings()  # environment variables only: no AWS call, no heavy import

with DAG(
    dag_id="customer_churn_approval",
    description="Approve or reject a registered churn model version; an approval schedules scoring",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz=SETTINGS.timezone),
    catchup=False,
    doc_md=__doc__,
    tags=["ml", "churn", "approval"],
    default_args={"owner": "ml-platform", "retries": 0, "execution_timeout": NON_JOB_TASK_TIMEOUT},
    params=airflow_params(approval_params(APPROVAL_STATUSES, APPROVED)),
) as dag:
    PythonOperator(task_id="approve_version", python_callable=approve_version, outlets=[champion_approvals()],
                   retry_delay=timedelta(seconds=0))
