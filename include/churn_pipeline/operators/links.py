"""Buttons on the job tasks in the Airflow UI that open the SageMaker console at the task's job.

The operators store the job name as the task runs; Airflow 3 keeps each link's URL in XCom when the
task ends and the API server reads it back from there, so no plugin registers these classes.
"""

from __future__ import annotations

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink


class SageMakerProcessingJobLink(BaseAwsLink):
    name = "SageMaker processing job"
    key = "churn_sagemaker_processing_job"
    format_str = BASE_AWS_CONSOLE_LINK + "/sagemaker/home?region={region_name}#/processing-jobs/{job_name}"


class SageMakerTrainingJobLink(BaseAwsLink):
    name = "SageMaker training job"
    key = "churn_sagemaker_training_job"
    format_str = BASE_AWS_CONSOLE_LINK + "/sagemaker/home?region={region_name}#/jobs/{job_name}"
