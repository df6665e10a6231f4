"""
# Customer churn: did the predictions come true?

Daily at 07:00 this DAG measures each scoring cohort (a run of `customer_churn_scoring`) once its
churn labels have arrived, `CHURN_LABEL_HORIZON_DAYS` (30) after it was scored: it joins the
cohort's scores with the labels of the current customer table (or the `labels_uri` param) and
compares what came true with what the model promised when it was registered. With
`CHURN_SOURCE_CONN_ID` set, `extract_labels` first reads the current customers from the same source as
training's `extract_customers` (the `source_query` param or `CHURN_SOURCE_QUERY`).

| task | runs | reads | writes |
| --- | --- | --- | --- |
| `extract_labels` | provider transfer; skipped without a source | a database / HTTP export | Parquet |
| `measure_outcomes` | this worker | due cohorts' scores, labels, evaluations | `outcomes/<cohort>/outcome.json` |
| `judge_outcomes` | this worker | every measured cohort | `outcomes/outcomes.html`, registry link; one message |
| `request_retraining` | this worker | the verdict | the `churn_retrain` asset event, or skipped |

Per cohort: label coverage, realised accuracy, ROC AUC, top-decile lift and precision, calibration
and profit at the model's stored threshold, on everyone and on the holdout (the customers scoring
marked `do not contact`, `CHURN_HOLDOUT_SHARE`). A cohort fails when its realised ROC AUC or lift is
below the promise by more than `CHURN_OUTCOME_MARGIN` (a share of the promise); when 2 of the last 5
cohorts failed, the team is told once, and with `CHURN_OUTCOME_RETRAIN` on the training DAG runs.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, CronTriggerTimetable, TriggerRule, chain

from churn_pipeline.domain.run_params import outcome_params
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.operators.assets import retrain_asset
from churn_pipeline.operators.extraction import ExtractLabelsOperator
from churn_pipeline.operators.params import airflow_params
from churn_pipeline.tasks.outcomes import ask_for_retraining, judge_the_cohorts, measure_due_cohorts

SETTINGS = load_settings()  # environment variables only: no AWS call, no heavy import

with DAG(
    dag_id="customer_churn_outcomes",
    description="Measure past churn scores against the labels that arrived; ask for retraining when they fail",
    schedule=CronTriggerTimetable("0 7 * * *", timezone=SETTINGS.timezone),
    start_date=pendulum.datetime(2026, 1, 1, tz=SETTINGS.timezone),
    catchup=False,
    max_active_runs=1,  # a cohort is measured once: two runs at a time would race for it
    dagrun_timeout=SETTINGS.dagrun_timeout,
    doc_md=__doc__,
    tags=["ml", "churn", "monitoring"],
    default_args=SETTINGS.task_defaults,
    params=airflow_params(outcome_params(SETTINGS.default_input_uri)),
) as dag:
    extract_labels = ExtractLabelsOperator(task_id="extract_labels")
    measure_outcomes = PythonOperator(task_id="measure_outcomes", python_callable=measure_due_cohorts,
                                      op_kwargs={"extracted": extract_labels.output},
                                      trigger_rule=TriggerRule.NONE_FAILED)  # also when no source was extracted
    judge_outcomes = PythonOperator(task_id="judge_outcomes", python_callable=judge_the_cohorts)
    request_retraining = PythonOperator(task_id="request_retraining", python_callable=ask_for_retraining,
                                        op_kwargs={"verdict": judge_outcomes.output}, outlets=[retrain_asset()])

    chain(extract_labels, measure_outcomes, judge_outcomes, request_retraining)
