"""The training DAG's shape with none of this project's code: the same operators, task count, params,
edges and data flow (XComArgs), so that ``make bench`` can tell what parsing the real DAG file adds
over the cost of any DAG of that shape (Airflow's own work when it builds the DAG)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.sdk import DAG, BaseOperator, CronTriggerTimetable, Param, TriggerRule, XComArg, chain


def _noop(**_: object) -> None:
    """Never called: the toy is parsed, not run."""


class _Job(BaseOperator):
    template_fields = ("staged", "inputs")

    def __init__(self, *, staged: object, inputs: dict[str, object] | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.staged, self.inputs = staged, inputs or {}


with DAG(
    dag_id="toy_shape_of_customer_churn_pipeline",
    schedule=CronTriggerTimetable("0 2 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=3,
    dagrun_timeout=timedelta(hours=23),
    doc_md=__doc__,
    tags=["toy"],
    default_args={"owner": "toy", "retries": 2, "retry_delay": timedelta(minutes=1),
                  "execution_timeout": timedelta(minutes=30)},
    params={name: Param(value, type="string" if isinstance(value, str) else "number")
            for name, value in {"input_uri": "s3://b/k", "source_query": "", "schema_uri": "s.json",
                                "accuracy_threshold": 0.75, "champion_metric": "roc_auc", "min_improvement": 0.0,
                                "compare_with_champion": "enforce", "drift_mode": "warn"}.items()},
) as dag:
    extract_customers = _Job(task_id="extract_customers", staged=None)
    stage_inputs = PythonOperator(task_id="stage_inputs", python_callable=_noop,
                                  op_kwargs={"extracted": extract_customers.output},
                                  trigger_rule=TriggerRule.NONE_FAILED)
    find_champion = PythonOperator(task_id="find_champion", python_callable=_noop)
    preprocess = _Job(task_id="preprocess", staged=stage_inputs.output)
    train = _Job(task_id="train", staged=stage_inputs.output, inputs={"preprocessing": preprocess.output})
    evaluate = _Job(task_id="evaluate", staged=stage_inputs.output,
                    inputs={"preprocessing": preprocess.output, "model": train.output,
                            "champion": find_champion.output})
    check_accuracy = BranchPythonOperator(
        task_id="check_accuracy", python_callable=_noop,
        op_kwargs={"staged": stage_inputs.output, "preprocessing": preprocess.output, "model": train.output,
                   "evaluation": evaluate.output})
    register_model = PythonOperator(
        task_id="register_model", python_callable=_noop,
        op_kwargs={"decision": XComArg(check_accuracy, key="decision"), "staged": stage_inputs.output,
                   "preprocessing": preprocess.output, "model": train.output})
    notify_failure = PythonOperator(task_id="notify_failure", python_callable=_noop,
                                    op_kwargs={"staged": stage_inputs.output, "model": train.output},
                                    trigger_rule=TriggerRule.ALL_DONE)
    chain(extract_customers, stage_inputs, [find_champion, preprocess])
    chain(check_accuracy, [register_model, notify_failure])
