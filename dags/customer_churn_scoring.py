"""
# Customer churn: score every customer with the approved model

Daily at 06:00 (after the 02:00 training) and as soon as a new champion is approved (the
`churn_champion` asset), this DAG scores the customer table with the champion, the newest approved
version, and writes one row per customer: id, `churn_probability`, risk band and model version.

| task | runs | reads | writes |
| --- | --- | --- | --- |
| `stage_customers` | this worker | the champion, the customer table | the customers as JSON lines (Spark: Parquet) |
| `score_customers` | Batch Transform; a Spark processing job for a Spark champion | the customers | their scores |
| `publish_scores` | this worker | the scoring job's output | `scores.csv`, `summary.json` |
| `notify_failure` | SNS / local outbox | failed tasks | one message per run |

A Spark champion (a version whose metadata says `engine=spark-mllib`) is scored by a Spark
processing job in SageMaker's Spark image (`score_spark.py`), which writes the same joined lines as
Batch Transform, so `publish_scores` writes the same files whichever engine trained the champion.

Everything of a run lives under `<bucket>/<prefix>/scoring/<run key>/`. No approved version fails
`stage_customers` before any job, saying how to approve one; a customer table lacking a column the
champion needs fails there too, naming the columns. Rows with missing cells are scored, not dropped.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, TriggerRule, chain

from churn_pipeline.domain.run_params import scoring_params
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.domain.steps import SCORE
from churn_pipeline.operators import job_task
from churn_pipeline.operators.assets import champion_asset
from churn_pipeline.operators.params import airflow_params
from churn_pipeline.tasks.scoring import notify_scoring_failed, publish_the_scores, stage_scoring_inputs

SETTINGS = load_settings()  # environment variables only: no AWS call, no heavy import

with DAG(
    dag_id="customer_churn_scoring",
    description="Score every customer with the approved churn model: daily, and when a champion is approved",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 6 * * *", timezone=SETTINGS.timezone),
                                 assets=[champion_asset(SETTINGS)]),
    start_date=pendulum.datetime(2026, 1, 1, tz=SETTINGS.timezone),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=SETTINGS.dagrun_timeout,
    doc_md=__doc__,
    tags=["ml", "sagemaker", "churn", "scoring"],
    default_args=SETTINGS.task_defaults,
    params=airflow_params(scoring_params(SETTINGS.default_input_uri)),
) as dag:
    stage_customers = PythonOperator(task_id="stage_customers", python_callable=stage_scoring_inputs)
    score_customers = job_task("score_customers", SCORE, SETTINGS, staged=stage_customers.output,
                               execution_timeout=SETTINGS.job_task_timeout)
    publish_scores = PythonOperator(task_id="publish_scores", python_callable=publish_the_scores,
                                    op_kwargs={"staged": stage_customers.output, "scores": score_customers.output})
    notify_failure = PythonOperator(task_id="notify_failure", python_callable=notify_scoring_failed,
                                    op_kwargs={"staged": stage_customers.output},
                                    trigger_rule=TriggerRule.ONE_FAILED)

    chain(publish_scores, notify_failure)
