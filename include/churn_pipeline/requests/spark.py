"""``CreateProcessingJob`` requests of the Spark engine: preprocessing, training, evaluation and the
scoring of a Spark champion, each
a job of SageMaker's own Spark processing image, shaped exactly as the SageMaker Python SDK's
``PySparkProcessor.run`` sends it (v2.257.6, ``src/sagemaker/spark/processing.py`` and
``src/sagemaker/processing.py``). Pure: no AWS call, no Airflow import.

The shape, as the SDK builds it:

- ``ContainerEntrypoint``: ``smspark-submit``, then ``--py-files`` with the ``py-files`` input's
  folder, then ``--local-spark-event-logs-dir`` with the folder the event logs are published from,
  then the script in the ``code`` input's folder;
- ``ProcessingInputs``: the job's own inputs first, then ``py-files``, ``conf``
  (``configuration.json``) and last ``code`` (the script itself), each with ``AppManaged`` and
  ``S3CompressionType`` as the SDK spells them;
- ``ProcessingOutputs``: the job's own outputs, then the event logs, uploaded ``Continuous``-ly.

Data sets are ``s3://`` arguments that Spark reads and writes itself: on a cluster of several
instances a path under ``/opt/ml/processing`` is one host's disk. Only the small files the driver
writes on the primary host (preprocessor, quality report, profile, model archive, evaluation) go
through ordinary ProcessingOutputs, under the same names as on the scikit-learn engine, so that
everything downstream reads them where it always has.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from typing import Any

from churn_pipeline.domain import contract
from churn_pipeline.domain.engine import MODEL_ARCHIVE
from churn_pipeline.domain.layout import RunLayout, ScoringLayout
from churn_pipeline.domain.settings import Settings
from churn_pipeline.domain.sizing import instance_vcpus
from churn_pipeline.domain.steps import EVALUATE, PREPROCESS, SCORE, TRAIN
from churn_pipeline.requests.common import container_network, role, tags
from churn_pipeline.requests.processing import EvaluationInputs, baseline_comparison

PROCESSING_ROOT = "/opt/ml/processing"
INPUT_ROOT = f"{PROCESSING_ROOT}/input"
OUTPUT_ROOT = f"{PROCESSING_ROOT}/output"
CODE_DIR = f"{INPUT_ROOT}/code"
PY_FILES_DIR = f"{INPUT_ROOT}/py-files"
CONF_DIR = f"{INPUT_ROOT}/conf"
EVENT_LOGS_DIR = f"{PROCESSING_ROOT}/spark-events/"  # the SDK's spelling, trailing slash included
SMSPARK_SUBMIT = "smspark-submit"
EVENT_LOGS_OUTPUT = "spark-events"
PY_FILES_ARCHIVE = "churn_common.zip"  # include/scripts/churn_common, zipped by stage_inputs
CONFIGURATION_FILE = "configuration.json"

# include/scripts/spark/<script>, staged as <run>/code/spark/<script>
SPARK_SCRIPTS_FOLDER = "spark"
SPARK_SCRIPTS = {PREPROCESS: "preprocess_spark.py", TRAIN: "train_spark.py", EVALUATE: "evaluate_spark.py",
                 SCORE: "score_spark.py"}

# The Spark scripts' options, in one place: include/scripts/spark/*_spark.py parse these names.
INPUT = "--input"  # preprocess: the customers (an s3:// object or prefix)
SCHEMA = "--schema"  # preprocess: the data contract's file, in its input folder
OUTPUT = "--output"  # preprocess: the prefix under which it writes the data sets (train/, validation/, ...)
TRAIN_SPLIT = "--train"  # train: the training split (a prefix of Parquet parts)
VALIDATION_SPLIT = "--validation"  # train: the validation split
PREPROCESSOR = "--preprocessor"  # train: the fitted preprocessing statistics' folder
MODEL = "--model"  # evaluate: the folder holding the trained model.tar.gz
HOLDOUT = "--holdout"  # evaluate: the held-out customers (an s3:// prefix)
OUTPUT_DIR = "--output-dir"  # every step: the driver's folder of small files (train: where model.tar.gz goes)
WORK_URI = "--work-uri"  # train, evaluate: where executors write what the driver packs or reads (s3://)
CHAMPION = "--champion"  # evaluate: the champion's model folder, when it can be used
CHAMPION_IDENTIFIER = "--champion-identifier"  # evaluate: who the champion is, for the records
CHAMPION_VERSION = "--champion-version"
CHAMPION_UNAVAILABLE = "--champion-unavailable"  # evaluate: why the champion's model cannot be used
CUSTOMERS = "--customers"  # score: the customers to score (an s3:// Parquet object or prefix)
CHAMPION_SCORES = "--champion-scores"  # evaluate: a champion scored by the scikit-learn image
WRITE_SCORES = "--write-scores"  # evaluate: only score the held-out customers, for the other engine's run
CHAMPION_SCORES_OUTPUT = contract.CHAMPION_SCORES_OUTPUT

# Which of those options name data sets the job reads, and which it writes (the execution role's
# S3 permissions follow from them: Spark commits a write through a _temporary folder it then deletes)
READ_ARGUMENTS = frozenset({INPUT, TRAIN_SPLIT, VALIDATION_SPLIT, HOLDOUT})
WRITTEN_ARGUMENTS = frozenset({OUTPUT, WORK_URI})

# The data sets preprocessing writes under its --output prefix, as Spark writes them (Parquet folders),
# named as the scikit-learn engine names its outputs; "holdout" is what evaluation scores.
SPARK_DATA_SETS = ("train", "validation", "test", "holdout")
# The small files of the preprocessing driver, each an ordinary ProcessingOutput
SPARK_PREPROCESSING_OUTPUTS = tuple(name for name in contract.PREPROCESSING_OUTPUTS if name not in SPARK_DATA_SETS)

# The Spark image writes JVM options that Java 17 refuses ("Unrecognized VM option 'UseConcMarkSweepGC'",
# "'PrintGCDateStamps'"): smspark's bootstrapper puts CMS on the driver and PrintGCDateStamps on the
# executors (src/smspark/bootstrapper.py, get_yarn_spark_resource_config). A user's spark-defaults are
# written after its own, so these replace them: the same out-of-memory kill, without the flags Java 17
# removed (G1, Java 17's default collector, on the driver; the image's parallel collector on executors).
DRIVER_JAVA_OPTIONS = "-XX:OnOutOfMemoryError='kill -9 %p' -XX:+UseG1GC -XX:MaxHeapFreeRatio=70"
EXECUTOR_JAVA_OPTIONS = "-verbose:gc -XX:OnOutOfMemoryError='kill -9 %p' -XX:+UseParallelGC"
# Shuffle partitions per vCPU of the cluster: the image's own rule for spark.default.parallelism
PARTITIONS_PER_VCPU = 2
DEFAULT_SHUFFLE_PARTITIONS = 200  # Spark's own default, for an instance type whose vCPUs are not known


def shuffle_partitions(instance_type: str, instance_count: int) -> int:
    """``spark.sql.shuffle.partitions`` for a cluster: two per vCPU, as the image sizes its default
    parallelism, instead of Spark's fixed 200 (too many for one small instance, too few for a cluster)."""
    vcpus = instance_vcpus(instance_type)
    if vcpus is None:
        return DEFAULT_SHUFFLE_PARTITIONS
    return instance_count * vcpus * PARTITIONS_PER_VCPU


def spark_configuration(instance_type: str, instance_count: int) -> list[dict[str, Any]]:
    """The ``configuration.json`` of a Spark job on ``instance_count`` x ``instance_type``: EMR-style
    classifications, as the SDK's ``configuration`` argument takes them (values are strings)."""
    return [{
        "Classification": "spark-defaults",
        "Properties": {
            "spark.driver.defaultJavaOptions": DRIVER_JAVA_OPTIONS,
            "spark.executor.defaultJavaOptions": EXECUTOR_JAVA_OPTIONS,
            "spark.sql.shuffle.partitions": str(shuffle_partitions(instance_type, instance_count)),
        },
    }]


def spark_configuration_file(settings: Settings, step: str) -> bytes:
    """``configuration.json`` of ``step``'s cluster as the SDK uploads it (``json.dumps``)."""
    resources = settings.spark_resources_for(step)
    return json.dumps(spark_configuration(resources.instance_type, resources.instance_count)).encode("utf-8")


def _input(name: str, uri: str, local_path: str) -> dict[str, Any]:
    """A ProcessingInput as the SDK's ``ProcessingInput._to_request_dict`` writes it."""
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        },
    }


def _output(name: str, uri: str, local_path: str, mode: str = "EndOfJob") -> dict[str, Any]:
    """A ProcessingOutput as the SDK's ``ProcessingOutput._to_request_dict`` writes it."""
    return {"OutputName": name, "AppManaged": False,
            "S3Output": {"S3Uri": uri, "LocalPath": local_path, "S3UploadMode": mode}}


def spark_request(settings: Settings, layout: RunLayout | ScoringLayout, *, step: str, job_name: str, image_uri: str,
                  inputs: Mapping[str, str], outputs: Mapping[str, str], arguments: list[str]) -> dict[str, Any]:
    """A ``CreateProcessingJob`` request running ``include/scripts/spark/<step>_spark.py`` on the step's
    Spark cluster. ``inputs`` and ``outputs`` are the job's own (name -> URI; each at
    ``/opt/ml/processing/{input,output}/<name>``), ``arguments`` the script's."""
    script = SPARK_SCRIPTS[step]
    resources = settings.spark_resources_for(step)
    cluster: dict[str, Any] = {"InstanceCount": resources.instance_count, "InstanceType": resources.instance_type,
                               "VolumeSizeInGB": settings.volume_size_gb}
    if settings.kms_key_id:
        cluster["VolumeKmsKeyId"] = settings.kms_key_id
    output_config: dict[str, Any] = {"Outputs": [
        *(_output(name, uri, f"{OUTPUT_ROOT}/{name}") for name, uri in outputs.items()),
        _output(EVENT_LOGS_OUTPUT, layout.spark_event_logs_uri(job_name), EVENT_LOGS_DIR, mode="Continuous"),
    ]}
    if settings.kms_key_id:
        output_config["KmsKeyId"] = settings.kms_key_id
    request: dict[str, Any] = {
        "ProcessingJobName": job_name,
        "ProcessingInputs": [
            *(_input(name, uri, f"{INPUT_ROOT}/{name}") for name, uri in inputs.items()),
            _input("py-files", layout.py_files_uri, PY_FILES_DIR),
            _input("conf", layout.spark_configuration_uri(step), CONF_DIR),
            _input("code", f"{layout.code_uri}/{SPARK_SCRIPTS_FOLDER}/{script}", CODE_DIR),
        ],
        "ProcessingOutputConfig": output_config,
        "ProcessingResources": {"ClusterConfig": cluster},
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_runtime_seconds},
        "AppSpecification": {
            "ImageUri": image_uri,
            "ContainerEntrypoint": [SMSPARK_SUBMIT, "--py-files", PY_FILES_DIR,
                                    "--local-spark-event-logs-dir", EVENT_LOGS_DIR, f"{CODE_DIR}/{script}"],
            "ContainerArguments": list(arguments),
        },
        "Environment": {"PYTHONUNBUFFERED": "1"},
        "RoleArn": role(settings),
        "Tags": tags(settings, layout),
    }
    network = container_network(settings)
    if network:  # a processing job takes the same fields inside its NetworkConfig
        request["NetworkConfig"] = network
    return request


def data_sets_uri(layout: RunLayout) -> str:
    """The prefix preprocessing writes its data sets under (``<prefix>/train/``, ...): the run's
    preprocessing folder, where the scikit-learn engine's outputs are too."""
    return layout.preprocessing_uri("").rstrip("/")


def spark_model_uri(layout: RunLayout, job_name: str) -> str:
    """Where the Spark training job's ``model.tar.gz`` lands: where a training job's would
    (``<model>/<job>/output/model.tar.gz``)."""
    return f"{layout.model_uri}/{job_name}/output"


def spark_preprocess_request(settings: Settings, layout: RunLayout, *, job_name: str, image_uri: str,
                             input_uri: str, schema_uri: str) -> dict[str, Any]:
    schema_file = posixpath.basename(schema_uri.rstrip("/"))
    return spark_request(
        settings, layout, step=PREPROCESS, job_name=job_name, image_uri=image_uri,
        inputs={"schema": schema_uri},
        outputs={name: layout.preprocessing_uri(name) for name in SPARK_PREPROCESSING_OUTPUTS},
        arguments=[INPUT, input_uri, SCHEMA, f"{INPUT_ROOT}/schema/{schema_file}", OUTPUT, data_sets_uri(layout)])


def spark_train_request(settings: Settings, layout: RunLayout, *, job_name: str, image_uri: str,
                        preprocessor_uri: str, hyperparameters: Mapping[str, float]) -> dict[str, Any]:
    """Training: the splits from preprocessing's prefix, the fitted statistics as an input, and the
    hyperparameters as the scikit-learn script takes them (``--<name> <value>``); Spark saves the
    model under the run's work prefix, and the driver packs it into the ``model`` output."""
    arguments = [TRAIN_SPLIT, f"{data_sets_uri(layout)}/train", VALIDATION_SPLIT, f"{data_sets_uri(layout)}/validation",
                 PREPROCESSOR, f"{INPUT_ROOT}/preprocessor", OUTPUT_DIR, f"{OUTPUT_ROOT}/model",
                 WORK_URI, layout.spark_work_uri(job_name)]
    for name, value in hyperparameters.items():
        arguments += [f"--{name}", str(value)]
    return spark_request(
        settings, layout, step=TRAIN, job_name=job_name, image_uri=image_uri,
        inputs={"preprocessor": preprocessor_uri}, outputs={"model": spark_model_uri(layout, job_name)},
        arguments=arguments)


def spark_evaluate_request(settings: Settings, layout: RunLayout, *, job_name: str, image_uri: str,
                           model_archive_uri: str, compared: EvaluationInputs | None = None) -> dict[str, Any]:
    """Evaluation: the trained model (its ``model.tar.gz``) as an input, the held-out customers from
    preprocessing's prefix, the champion as an input with who it is as arguments, or why its model
    cannot be used, and the baseline profile drift is measured against exactly as the scikit-learn
    evaluation takes it (``processing.baseline_comparison``)."""
    if not model_archive_uri.endswith(MODEL_ARCHIVE):
        raise ValueError(f"the Spark evaluation needs the trained {MODEL_ARCHIVE}, got {model_archive_uri!r}")
    compared = compared or EvaluationInputs()
    comparison_inputs, comparison_arguments = champion_comparison(compared)
    baseline_inputs, baseline_arguments = baseline_comparison(compared)
    arguments = [MODEL, f"{INPUT_ROOT}/model", HOLDOUT, spark_holdout_uri(layout),
                 OUTPUT_DIR, f"{OUTPUT_ROOT}/{contract.EVALUATION_OUTPUT}", WORK_URI, layout.spark_work_uri(job_name),
                 *comparison_arguments, *baseline_arguments]
    return spark_request(
        settings, layout, step=EVALUATE, job_name=job_name, image_uri=image_uri,
        inputs={"model": model_archive_uri, **comparison_inputs, **baseline_inputs},
        outputs={contract.EVALUATION_OUTPUT: layout.evaluation_uri}, arguments=arguments)


def spark_holdout_uri(layout: RunLayout) -> str:
    """Where Spark's preprocessing writes the held-out customers (raw records, Parquet part files)."""
    return f"{data_sets_uri(layout)}/holdout"


def champion_comparison(compared: EvaluationInputs) -> tuple[dict[str, str], list[str]]:
    """The champion as the Spark evaluation takes it: its model as the ``champion`` input and
    ``--champion`` naming its folder, its scores from its own engine's image (``--champion-scores``),
    or ``--champion-unavailable`` with the reason; who it is either way."""
    champion = compared.champion
    if champion is None:
        return {}, []
    arguments = [CHAMPION_IDENTIFIER, champion.identifier, CHAMPION_VERSION, str(champion.version)]
    if compared.champion_problem:
        return {}, [*arguments, CHAMPION_UNAVAILABLE, compared.champion_problem]
    if compared.champion_scores_uri:
        return ({CHAMPION_SCORES_OUTPUT: compared.champion_scores_uri},
                [*arguments, CHAMPION_SCORES, f"{INPUT_ROOT}/{CHAMPION_SCORES_OUTPUT}"])
    return {"champion": champion.model_uri}, [*arguments, CHAMPION, f"{INPUT_ROOT}/champion"]


def spark_champion_scores_request(settings: Settings, layout: RunLayout, *, job_name: str, image_uri: str,
                                  model_archive_uri: str, holdout_uri: str) -> dict[str, Any]:
    """A Spark champion scoring a scikit-learn run's held-out customers (preprocessing's ``holdout``
    output, Parquet, read by Spark itself) on the evaluate step's cluster: ``evaluate_spark.py
    --write-scores``, its pairs under the run's ``champion-scores`` prefix for evaluation.py to value."""
    if not model_archive_uri.endswith(MODEL_ARCHIVE):
        raise ValueError(f"a Spark champion is scored from its {MODEL_ARCHIVE}, got {model_archive_uri!r}")
    arguments = [MODEL, f"{INPUT_ROOT}/model", HOLDOUT, holdout_uri,
                 OUTPUT_DIR, f"{OUTPUT_ROOT}/{CHAMPION_SCORES_OUTPUT}", WORK_URI, layout.spark_work_uri(job_name),
                 WRITE_SCORES]
    return spark_request(settings, layout, step=EVALUATE, job_name=job_name, image_uri=image_uri,
                         inputs={"model": model_archive_uri},
                         outputs={CHAMPION_SCORES_OUTPUT: layout.champion_scores_uri}, arguments=arguments)


def spark_score_request(settings: Settings, layout: ScoringLayout, *, job_name: str, image_uri: str,
                        model_archive_uri: str) -> dict[str, Any]:
    """Scoring every customer with a Spark champion: its ``model.tar.gz`` as the ``model`` input, the
    staged customers (Parquet, under the scoring run's input prefix) read by Spark itself, and the
    joined lines written by the executors under the run's ``spark-scores`` prefix, in the shape Batch
    Transform gives a scikit-learn champion's (``score_spark.py``). The model is copied under the
    job's work prefix, so that every executor of a cluster loads the same one."""
    if not model_archive_uri.endswith(MODEL_ARCHIVE):
        raise ValueError(f"a Spark champion is scored from its {MODEL_ARCHIVE}, got {model_archive_uri!r}")
    arguments = [MODEL, f"{INPUT_ROOT}/model", CUSTOMERS, layout.input_uri, OUTPUT, layout.spark_scores_uri,
                 WORK_URI, layout.spark_work_uri(job_name)]
    return spark_request(settings, layout, step=SCORE, job_name=job_name, image_uri=image_uri,
                         inputs={"model": model_archive_uri}, outputs={}, arguments=arguments)
