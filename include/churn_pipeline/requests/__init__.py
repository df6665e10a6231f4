"""Pure builders of the SageMaker requests the pipeline sends, by API family: the bottom layer of the job
stack. Each function takes settings and explicit inputs and returns the exact request dict: no AWS
call, no Airflow import. The ``sagemaker`` backend sends these dicts through the amazon provider's
operators; the local backend's runner executes the very same dicts.

    common.py         tags, network, instances and role every request shares; the steps' scripts and kinds
    processing.py     CreateProcessingJob: preprocessing, evaluation
    training.py       CreateTrainingJob: the forest in script mode
    transform.py      CreateModel and CreateTransformJob: scoring with the champion
    model_package.py  CreateModelPackage: a version awaiting approval, with its lineage
    steps.py          the request of each job step, from the upstream tasks' results
"""
