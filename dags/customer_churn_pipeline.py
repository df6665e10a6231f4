"""
# Customer churn: nightly retraining on Amazon SageMaker

Every night at 02:00 this DAG retrains the customer-churn model and registers it only when it is
good enough. It also runs when `customer_churn_outcomes` finds the champion's predictions failing
and asks for retraining (the `churn_retrain` asset, with `CHURN_OUTCOME_RETRAIN` on).

| task | runs | reads | writes |
| --- | --- | --- | --- |
| `extract_customers` | provider transfer; skipped without a source | database / HTTP export | Parquet in `input/` |
| `stage_inputs` | this worker | params, extract, `include/scripts/` | the run's code bundle, input, schema; image URI |
| `find_champion` | Model Registry | the group's versions | the approved champion, the drift baseline |
| `preprocess` | Processing job, `preprocessing.py` | customers (CSV, Parquet), schema | splits, preprocessor, profile |
| `train` | Training job (scikit-learn, script mode), `training.py` | train + validation splits | `model.tar.gz` |
| `score_champion` | Processing job in the champion's image, if not this run's | champion, holdout | its scores |
| `evaluate` | Processing job, `evaluation.py` | model, champion or its scores, holdout | `evaluation.json`, drift |
| `check_accuracy` | `BranchPythonOperator` | `evaluation.json`, `drift.json` | register or notify |
| `register_model` | Model Registry | model, metrics | a version awaiting manual approval |
| `notify_failure` | SNS / local outbox | gate decision or failed tasks | one message per run |

Everything of a run lives under `<bucket>/<prefix>/runs/<run key>/`, the key being the logical date
(`20261126T020000Z`). Retrying or clearing a task reuses this run's completed job instead of paying
for it again. `CHURN_BACKEND=local` (the default) runs the same requests on this machine; `sagemaker`
sends them to AWS. With `CHURN_SOURCE_CONN_ID` set, `extract_customers` reads the customers from that
connection (SQL: its query, Redshift: UNLOAD, HTTP: the export) into the run's own prefix;
without it, it is skipped and the run reads `input_uri`. Params: `input_uri` (CSV or Parquet object,
prefix or, locally, a path), `source_query` (this run's SQL instead of `CHURN_SOURCE_QUERY`),
`schema_uri` (the data contract), `accuracy_threshold`, and how the new model must compare with the
approved champion (`champion_metric`, `min_improvement`, `compare_with_champion`) and treat drift
(`drift_mode`); the retention campaign's figures (`value_retained`, `offer_cost`, `offer_acceptance`),
from which training picks the contact threshold on the validation split; and `max_run_cost`, above
which a job's worst case keeps it from starting. A rejected model fails `notify_failure` after
notifying, so the run is not mistaken for a success. Settings: docs/settings.md.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, TriggerRule, XComArg, chain

from churn_pipeline.domain.run_params import pipeline_params
from churn_pipeline.domain.settings import DEFAULT_SCHEMA_FILE, load_settings
from churn_pipeline.domain.steps import EVALUATE, PREPROCESS, SCORE_CHAMPION, TRAIN
from churn_pipeline.domain.xcom_keys import DECISION_KEY
from churn_pipeline.operators import job_task
from churn_pipeline.operators.assets import model_version_asset, retrain_asset
from churn_pipeline.operators.extraction import ExtractCustomersOperator
from churn_pipeline.operators.params import airflow_params
from churn_pipeline.tasks.champion import look_up_champion
from churn_pipeline.tasks.gating import choose_branch
from churn_pipeline.tasks.notification import notify_team
from churn_pipeline.tasks.registration import notify_registration_failed, register_model_version
from churn_pipeline.tasks.staging import stage_run_inputs

SETTINGS = load_settings()  # environment variables only: no AWS call, no heavy import

with DAG(
    dag_id="customer_churn_pipeline",
    description="Nightly churn model retraining on SageMaker, registered only when good enough",
    # nightly, and when the outcome DAG asks for retraining (churn_retrain, CHURN_OUTCOME_RETRAIN)
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 2 * * *", timezone=SETTINGS.timezone),
                                 assets=[retrain_asset()]),
    start_date=pendulum.datetime(2026, 1, 1, tz=SETTINGS.timezone),
    catchup=False,
    is_paused_upon_creation=True,  # also where new DAGs start unpaused (make's home): the nightly run is opt-in
    max_active_runs=3,
    dagrun_timeout=SETTINGS.dagrun_timeout,
    doc_md=__doc__,
    tags=["ml", "sagemaker", "churn"],
    default_args=SETTINGS.task_defaults,
    params=airflow_params(pipeline_params(SETTINGS.default_input_uri, str(DEFAULT_SCHEMA_FILE), SETTINGS.engine)),
) as dag:
    extract_customers = ExtractCustomersOperator(task_id="extract_customers")
    stage_inputs = PythonOperator(task_id="stage_inputs", python_callable=stage_run_inputs,
                                  op_kwargs={"extracted": extract_customers.output},
                                  trigger_rule=TriggerRule.NONE_FAILED)  # also when no source was extracted
    find_champion = PythonOperator(task_id="find_champion", python_callable=look_up_champion,
                                   op_kwargs={"staged": stage_inputs.output})
    preprocess = job_task("preprocess", PREPROCESS, SETTINGS, staged=stage_inputs.output,
                          execution_timeout=SETTINGS.job_task_timeout)
    train = job_task("train", TRAIN, SETTINGS, staged=stage_inputs.output,
                     inputs={"preprocessing": preprocess.output}, execution_timeout=SETTINGS.job_task_timeout)
    score_champion = job_task("score_champion", SCORE_CHAMPION, SETTINGS, staged=stage_inputs.output,
                              inputs={"preprocessing": preprocess.output, "champion": find_champion.output},
                              execution_timeout=SETTINGS.job_task_timeout)
    evaluate = job_task("evaluate", EVALUATE, SETTINGS, staged=stage_inputs.output,
                        inputs={"preprocessing": preprocess.output, "model": train.output,
                                "champion": find_champion.output, "champion_scores": score_champion.output},
                        execution_timeout=SETTINGS.job_task_timeout,
                        trigger_rule=TriggerRule.NONE_FAILED)  # also when score_champion had nothing to do
    check_accuracy = BranchPythonOperator(
        task_id="check_accuracy", python_callable=choose_branch,
        op_kwargs={"staged": stage_inputs.output, "preprocessing": preprocess.output, "model": train.output,
                   "evaluation": evaluate.output, "champion_scores": score_champion.output,
                   "on_pass": "register_model", "on_fail": "notify_failure"},
        trigger_rule=TriggerRule.NONE_FAILED)  # score_champion, an upstream, is skipped on most runs
    register_model = PythonOperator(
        task_id="register_model", python_callable=register_model_version,
        op_kwargs={"decision": XComArg(check_accuracy, key=DECISION_KEY), "staged": stage_inputs.output,
                   "preprocessing": preprocess.output, "model": train.output},
        on_failure_callback=notify_registration_failed, outlets=[model_version_asset()])
    notify_failure = PythonOperator(
        task_id="notify_failure", python_callable=notify_team,
        op_kwargs={"gate": check_accuracy.task_id, "staged": stage_inputs.output, "model": train.output},
        trigger_rule=TriggerRule.ALL_DONE)

    chain(extract_customers, stage_inputs, [find_champion, preprocess])
    chain(check_accuracy, [register_model, notify_failure])
