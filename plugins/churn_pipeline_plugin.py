"""Airflow plugin of the churn pipeline: registers the SageMaker console links of the job tasks.

Operators live in the ``churn_pipeline`` package (include/churn_pipeline) rather than here, so the
DAG imports them the same way in tests, on MWAA and locally; Airflow loads this file once per
process, which is what link registration needs.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from churn_pipeline.operators.links import SageMakerProcessingJobLink, SageMakerTrainingJobLink


class ChurnPipelinePlugin(AirflowPlugin):
    name = "churn_pipeline"
    operator_extra_links = [SageMakerProcessingJobLink(), SageMakerTrainingJobLink()]  # noqa: RUF012 - Airflow reads a list
