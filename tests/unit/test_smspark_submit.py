"""The smspark-submit stand-in's pure parts (its options as the image's cli.py takes them, the job's
configuration.json, what it submits where), and how the local runner tells a Spark request and
points its s3:// arguments at the store. Running it with Spark: tests/local_spark/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from churn_pipeline.local.container import local_store_uri, remove_checksum_files, write_processing_config
from churn_pipeline.local.smspark_submit import (
    SparkConfiguration,
    SubmitError,
    SubmitOptions,
    expand_files,
    instance_count,
    parse_arguments,
    placement_for,
    read_configuration,
    spark_properties,
    submit_command,
)
from churn_pipeline.local.spark_twin import image_repository, image_tag, is_spark_processing_image
from churn_pipeline.services.objectstore import LocalObjectStore

SPARK_IMAGE = "173754725891.dkr.ecr.us-east-1.amazonaws.com/sagemaker-spark-processing:3.5-cpu-py312-v1.3"


def test_options_come_before_the_app_and_everything_after_it_is_the_apps() -> None:
    options = parse_arguments(["--py-files", "/opt/ml/processing/input/py-files", "--local-spark-event-logs-dir",
                               "/opt/ml/processing/spark-events/", "-v", "--class=org.Main", "app.py",
                               "--input", "s3://b/raw", "--py-files", "not-ours"])

    assert options == SubmitOptions(app="app.py", app_arguments=("--input", "s3://b/raw", "--py-files", "not-ours"),
                                    main_class="org.Main", py_files="/opt/ml/processing/input/py-files",
                                    local_spark_event_logs_dir="/opt/ml/processing/spark-events/", verbose=True)


@pytest.mark.parametrize(("argv", "message"), [
    (["--conf", "spark.x=1", "app.py"], "no such option: --conf"),
    (["--driver-memory", "4g", "app.py"], "no such option: --driver-memory"),
    (["--jars"], "option --jars needs a value"),
    (["-v"], "missing the app"),
    ([], "missing the app"),
])
def test_what_smspark_submit_refuses_is_one_message(argv: list[str], message: str) -> None:
    with pytest.raises(SubmitError, match=message):
        parse_arguments(argv)


def test_a_directory_stands_for_its_top_level_files_and_uris_stay(tmp_path: Path) -> None:
    (tmp_path / "deps" / "nested").mkdir(parents=True)
    for name in ("b.zip", "a.py", "nested/deeper.py"):
        (tmp_path / "deps" / name).write_text("")

    assert expand_files(f"{tmp_path / 'deps'},s3://bucket/extra.zip") == (
        f"{tmp_path / 'deps' / 'a.py'},{tmp_path / 'deps' / 'b.zip'},s3://bucket/extra.zip")
    assert expand_files(f"file://{tmp_path / 'deps' / 'a.py'}") == f"file://{tmp_path / 'deps' / 'a.py'}"


@pytest.mark.parametrize(("value", "message"), [
    ("relative/dir", "must be an absolute path"),
    ("/no/such/folder", "does not exist"),
    ("", "empty path"),
    ("hdfs://namenode/x.zip", "not a file, a directory or an s3:// URI"),
])
def test_file_options_name_what_is_wrong(value: str, message: str) -> None:
    with pytest.raises(SubmitError, match=message):
        expand_files(value)


def test_an_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SubmitError, match="found zero files"):
        expand_files(str(tmp_path))


def test_spark_defaults_become_properties_and_other_classifications_are_named(tmp_path: Path) -> None:
    path = tmp_path / "configuration.json"
    path.write_text(json.dumps([
        {"Classification": "spark-defaults", "Properties": {"spark.sql.shuffle.partitions": "8"}},
        {"Classification": "core-site", "Properties": {"fs.s3a.connection.maximum": "100"}},
        {"Classification": "spark-env", "Configurations": [{"Classification": "export", "Properties": {"A": "1"}}]},
        {"Classification": "spark-defaults", "Properties": {"spark.executor.defaultJavaOptions": "-XX:+UseG1GC"}},
    ]))

    assert read_configuration(path) == SparkConfiguration(
        {"spark.sql.shuffle.partitions": "8", "spark.executor.defaultJavaOptions": "-XX:+UseG1GC"},
        ("core-site", "spark-env"))
    path.write_text(json.dumps({"Classification": "spark-defaults", "Properties": {"spark.a": "1"}}))
    assert read_configuration(path).properties == {"spark.a": "1"}  # one classification, not in a list
    assert read_configuration(tmp_path / "absent.json") == SparkConfiguration()


@pytest.mark.parametrize(("document", "message"), [
    ("{not json", "configuration.json is not JSON"),
    ('[{"Classification": "spark-default", "Properties": {}}]', "'spark-default' is not a classification"),
    ('[{"Properties": {}}]', "entry 1 is not a"),
    ('[{"Classification": "spark-defaults", "Properties": {"spark.cores.max": 4}}]', "must map names to strings"),
])
def test_a_bad_configuration_is_one_message(tmp_path: Path, document: str, message: str) -> None:
    path = tmp_path / "configuration.json"
    path.write_text(document)
    with pytest.raises(SubmitError, match=message):
        read_configuration(path)


def test_the_job_config_decides_local_threads_or_a_loopback_cluster(tmp_path: Path) -> None:
    request = {"ProcessingJobName": "j", "ProcessingResources": {"ClusterConfig": {"InstanceCount": 3}}}
    assert instance_count(tmp_path) == 1  # no processingjobconfig.json: one instance, as smspark's default
    write_processing_config(request, tmp_path)

    assert instance_count(tmp_path) == 3
    assert json.loads((tmp_path / "config" / "resourceconfig.json").read_text()) == {
        "current_host": "algo-1", "hosts": ["algo-1", "algo-2", "algo-3"]}
    assert placement_for(1).master == "local[*]"
    cluster = placement_for(3, "spark://127.0.0.1:7077", cpus=2)
    assert (cluster.workers, cluster.cores_per_worker) == (3, 1)


def test_the_machine_decides_sizes_and_addresses_and_says_which_it_replaced(tmp_path: Path) -> None:
    configuration = SparkConfiguration({"spark.executor.memory": "60g", "spark.master": "yarn",
                                        "spark.sql.shuffle.partitions": "64", "spark.ui.enabled": "false"})
    cluster = placement_for(2, "spark://127.0.0.1:7077", cpus=2, environ={})

    properties, replaced = spark_properties(configuration, cluster, tmp_path / "events")

    assert replaced == ["spark.executor.memory", "spark.master"]  # ui.enabled=false is what it would be anyway
    assert properties["spark.sql.shuffle.partitions"] == "64"
    assert properties["spark.executor.memory"] == "512m" and properties["spark.cores.max"] == "2"
    assert properties["spark.driver.bindAddress"] == properties["spark.driver.host"] == "127.0.0.1"
    assert properties["spark.eventLog.enabled"] == "true"
    assert properties["spark.eventLog.dir"] == (tmp_path / "events").as_uri()
    assert "spark.master" not in properties  # the command line says where: --master
    local, _ = spark_properties(SparkConfiguration(), placement_for(1), None)
    assert "spark.eventLog.enabled" not in local and "spark.cores.max" not in local


def test_the_machines_owner_sizes_the_loopback_workers_and_executors_with_sparks_own_variables() -> None:
    laptop = placement_for(2, "spark://127.0.0.1:7077", cpus=2, environ={})
    larger = placement_for(2, "spark://127.0.0.1:7077", cpus=2,
                           environ={"SPARK_WORKER_MEMORY": "6g", "SPARK_EXECUTOR_MEMORY": "5G"})

    assert (laptop.worker_memory, laptop.executor_memory) == ("1g", "512m")
    assert (larger.worker_memory, larger.executor_memory) == ("6g", "5G")
    assert spark_properties(SparkConfiguration(), larger, None)[0]["spark.executor.memory"] == "5G"


@pytest.mark.parametrize(("environ", "message"), [
    ({"SPARK_EXECUTOR_MEMORY": "lots"}, "SPARK_EXECUTOR_MEMORY='lots' is not a JVM memory size such as 512m or 4g"),
    ({"SPARK_EXECUTOR_MEMORY": "2g"}, "SPARK_EXECUTOR_MEMORY=2g does not fit a loopback worker of "
                                      "SPARK_WORKER_MEMORY=1g"),
])
def test_a_size_that_cannot_work_is_refused_before_any_jvm_starts(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SubmitError, match=message):
        placement_for(2, cpus=2, environ=environ)


def test_the_submit_is_the_twins_spark_submit_in_client_mode(tmp_path: Path) -> None:
    (tmp_path / "py-files").mkdir()
    (tmp_path / "py-files" / "common.zip").write_text("")
    options = parse_arguments(["--py-files", str(tmp_path / "py-files"), "app.py", "--n", "1"])

    command = submit_command(Path("/twin/pyspark"), options, placement_for(1), {"spark.a": "1"})

    assert command == ["/twin/pyspark/bin/spark-submit", "--master", "local[*]", "--deploy-mode", "client",
                       "--py-files", str(tmp_path / "py-files" / "common.zip"), "--conf", "spark.a=1",
                       "app.py", "--n", "1"]


@pytest.mark.parametrize(("uri", "spark"), [
    (SPARK_IMAGE, True),
    ("571004829621.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-spark-processing:3.5-cpu-py39-v1.2", True),
    ("123.dkr.ecr.us-east-1.amazonaws.com/sagemaker-spark-processing@sha256:abc", True),
    ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3", False),
    ("localhost:5000/sagemaker-spark-processing-fork:1", False),
    ("local/sklearn", False),
])
def test_the_spark_processing_image_is_told_by_its_repository(uri: str, spark: bool) -> None:
    assert is_spark_processing_image(uri) is spark


def test_image_names_split_into_repository_and_tag() -> None:
    assert (image_repository(SPARK_IMAGE), image_tag(SPARK_IMAGE)) == ("sagemaker-spark-processing",
                                                                       "3.5-cpu-py312-v1.3")
    assert (image_repository("localhost:5000/a/b"), image_tag("localhost:5000/a/b")) == ("a/b", "")


def test_s3_arguments_point_at_the_store_and_the_rest_stay(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)

    assert local_store_uri("s3://bucket/features/run/", store) == (tmp_path / "s3/bucket/features/run").as_uri() + "/"
    assert local_store_uri("s3://bucket/raw/data.csv", store) == (tmp_path / "s3/bucket/raw/data.csv").as_uri()
    assert local_store_uri("--input", store) == "--input"
    with pytest.raises(ValueError, match="unsafe key"):
        local_store_uri("s3://bucket/../../etc", store)


def test_hadoops_checksum_files_are_removed_from_what_the_job_was_given_only(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    for key in ("features/run/part-0.parquet", "features/run/.part-0.parquet.crc", "features/run/._SUCCESS.crc",
                "features/run/_SUCCESS", "features/run/.orphan.crc", "elsewhere/.a.crc", "elsewhere/a"):
        store.write_bytes(f"s3://bucket/{key}", b"")

    removed = remove_checksum_files(store, ["--output", "s3://bucket/features/run/", "s3://bucket/absent/"])

    assert sorted(path.name for path in removed) == ["._SUCCESS.crc", ".part-0.parquet.crc"]
    assert store.list_uris("s3://bucket/features/run") == [
        "s3://bucket/features/run/.orphan.crc", "s3://bucket/features/run/_SUCCESS",
        "s3://bucket/features/run/part-0.parquet"]
    assert store.exists("s3://bucket/elsewhere/.a.crc")


def test_the_java_check_names_a_missing_java_or_another_version(tmp_path: Path) -> None:
    from churn_pipeline.local.spark_twin import java_drift

    assert java_drift({"JAVA_HOME": str(tmp_path / "absent"), "PATH": ""}) == [
        "java: not found (JAVA_HOME or java on the PATH); make setup installs openjdk-17-jre-headless"]


@pytest.mark.parametrize(("missing", "reason"), [
    ("spark_job_python", "ClientError: no Spark twin at "),
    ("find_java", "ClientError: no Java for the Spark twin (JAVA_HOME, or java on the PATH)"),
])
def test_a_spark_request_without_the_twin_or_java_fails_before_it_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str, reason: str) -> None:
    import churn_pipeline.local.runner as runner_module
    from churn_pipeline.local.image_twin import JobPython
    from churn_pipeline.local.runner import LocalJobRunner

    # whatever this machine has: the twin found (a stand-in for it) unless the case takes it away
    twin = JobPython(Path("/twin/bin/python3"), is_twin=True, version="3.12")
    monkeypatch.setattr(runner_module, "spark_job_python", lambda *_: twin)
    monkeypatch.setattr(runner_module, missing, lambda *_: None)
    store = LocalObjectStore(tmp_path)
    request = {"ProcessingJobName": "spark-job", "RoleArn": "arn:aws:iam::123456789012:role/r",
               "ProcessingResources": {"ClusterConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.xlarge"}},
               "AppSpecification": {"ImageUri": SPARK_IMAGE, "ContainerEntrypoint": ["smspark-submit", "app.py"]},
               "ProcessingOutputConfig": {"Outputs": []}}

    description = LocalJobRunner(store, log=lambda line: None).run_processing(request)

    assert description["ProcessingJobStatus"] == "Failed"
    assert description["FailureReason"].startswith(reason)
