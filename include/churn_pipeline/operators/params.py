"""The DAGs' params as Airflow's ``Param`` objects, from their one definition in ``domain.run_params``."""

from __future__ import annotations

from collections.abc import Sequence

from airflow.sdk import Param

from churn_pipeline.domain.run_params import RunParam


def airflow_params(params: Sequence[RunParam]) -> dict[str, Param]:
    return {param.name: Param(param.default, **param.schema) for param in params}
