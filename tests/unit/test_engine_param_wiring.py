"""The training DAG and the make targets' pre-check offer the engine param, its default the
deployment's CHURN_ENGINE, so that a run's engine is chosen per run and refused in one line when it
is none of them."""

from __future__ import annotations

import pytest

from churn_pipeline.domain.run_params import PIPELINE_DAG, RunParamsError, check_conf
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.tooling.cli import dag_params
from tests.conftest import PROJECT


def test_the_training_dag_offers_the_engine_defaulting_to_the_setting() -> None:
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("CHURN_ENGINE", "spark")
        bag = DagBag(dag_folder=str(PROJECT / "dags" / f"{PIPELINE_DAG}.py"))
    assert not bag.import_errors, bag.import_errors
    engine = bag.dags[PIPELINE_DAG].params.get_param("engine")
    assert engine.value == "spark"
    assert engine.schema["enum"] == ["auto", "sklearn", "spark"]


def test_the_make_targets_precheck_takes_the_same_default_and_refuses_the_same_values() -> None:
    params = dag_params(PIPELINE_DAG, load_settings({"CHURN_ENGINE": "sklearn"}))
    assert next(param for param in params if param.name == "engine").default == "sklearn"
    with pytest.raises(RunParamsError, match=r"^engine must be one of auto, sklearn, spark, not 'mllib'$"):
        check_conf(params, {"engine": "mllib"}, PIPELINE_DAG)
