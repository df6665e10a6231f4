"""stage_inputs and the engine: it chooses once per run (the param, else CHURN_ENGINE; auto from the
sizing estimate), records the choice for the summary and the report, hands it to every job task in
the staged payload with the engine's image, and for a Spark run ships ``churn_common.zip`` and each
step's ``configuration.json`` under the run's code prefix. Bad choices get one line and stage nothing."""

from __future__ import annotations

import io
import json
import zipfile
import zipimport
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.domain import sizing
from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.payloads import StagedInputs
from churn_pipeline.domain.settings import DEFAULT_SCHEMA_FILE, SAMPLE_DATA_FILE, SCRIPTS_DIR, load_settings
from churn_pipeline.services.objectstore import LocalObjectStore
from churn_pipeline.tasks.staging import py_files_archive

RUN_AFTER = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
SPARK_IMAGE = "173754725891.dkr.ecr.us-east-1.amazonaws.com/sagemaker-spark-processing:3.5-cpu-py312-v1.3"


def stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, params: dict | None = None,
          **environment: str) -> StagedInputs:
    from churn_pipeline.tasks.staging import stage_run_inputs

    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("CHURN_IMAGE_URI", "local-sklearn")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    ti = SimpleNamespace(task_id="stage_inputs", xcom_push=lambda key, value: None)
    return StagedInputs.from_xcom(stage_run_inputs(
        params={"input_uri": str(SAMPLE_DATA_FILE), "schema_uri": str(DEFAULT_SCHEMA_FILE), **(params or {})},
        dag_run=SimpleNamespace(run_after=RUN_AFTER), ti=ti, logical_date=RUN_AFTER))


def store_and_layout(tmp_path: Path, staged: StagedInputs) -> tuple[LocalObjectStore, RunLayout]:
    return LocalObjectStore(tmp_path / "root"), RunLayout(load_settings().base_uri, staged.run_key)


def test_a_spark_run_is_staged_with_the_spark_image_and_its_py_files_and_configuration(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staged = stage(tmp_path, monkeypatch, {"engine": "spark"})
    assert (staged.engine, staged.image_uri) == ("spark", SPARK_IMAGE)
    assert staged.engine_reason == "engine=spark was asked for"
    store, layout = store_and_layout(tmp_path, staged)

    archive = store.read_bytes(f"{layout.py_files_uri}/churn_common.zip")
    assert store.list_uris(layout.py_files_uri) == [f"{layout.py_files_uri}/churn_common.zip"], \
        "smspark-submit passes every file of the folder to --py-files"
    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert "churn_common/__init__.py" in names and "churn_common/contract.json" in names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    (tmp_path / "churn_common.zip").write_bytes(archive)
    assert zipimport.zipimporter(str(tmp_path / "churn_common.zip")).find_spec("churn_common") is not None

    for step in ("preprocess", "train", "evaluate"):
        (defaults,) = json.loads(store.read_bytes(layout.spark_configuration_uri(step)))
        assert defaults["Classification"] == "spark-defaults"
        assert "spark.executor.defaultJavaOptions" in defaults["Properties"]
    record = json.loads(store.read_bytes(layout.engine_file_uri))
    assert record == {"engine": "spark", "registry_name": "spark-mllib", "asked": "spark",
                      "reason": "engine=spark was asked for"}


def test_the_py_files_archive_is_the_same_bytes_for_the_same_code(tmp_path: Path) -> None:
    package = tmp_path / "churn_common"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "rules.json").write_text("{}")
    (package / "__pycache__" / "x.cpython-312.pyc").write_bytes(b"\0")
    first = py_files_archive(package)
    (package / "__init__.py").touch()  # a new modification time, the same code
    assert py_files_archive(package) == first
    assert zipfile.ZipFile(io.BytesIO(first)).namelist() == ["churn_common/__init__.py", "churn_common/rules.json"]
    assert py_files_archive() == py_files_archive(SCRIPTS_DIR / "churn_common")


def test_a_scikit_learn_run_ships_the_spark_files_a_spark_champion_scores_it_with(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staged = stage(tmp_path, monkeypatch)
    assert (staged.engine, staged.image_uri) == ("sklearn", "local-sklearn")
    assert staged.engine_reason and staged.engine_reason.startswith("auto chose scikit-learn: about ")
    store, layout = store_and_layout(tmp_path, staged)
    assert store.read_bytes(f"{layout.py_files_uri}/churn_common.zip") == py_files_archive()
    assert store.exists(layout.spark_configuration_uri("evaluate"))  # the step score_champion runs as
    assert json.loads(store.read_bytes(layout.engine_file_uri))["engine"] == "sklearn"


def test_auto_runs_on_spark_what_would_not_fit_scikit_learn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the bundled sample is small: the measured coefficient is scaled so that training cannot fit
    monkeypatch.setitem(sizing.MIB_PER_MILLION_ROWS, "train", 10**9)
    staged = stage(tmp_path, monkeypatch)
    assert (staged.engine, staged.image_uri) == ("spark", SPARK_IMAGE)
    assert staged.engine_reason and staged.engine_reason.startswith("auto chose Spark: for about ")
    assert "the scikit-learn job of train would not fit its instance (ml.m5.xlarge)" in staged.engine_reason


def test_the_param_wins_over_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert stage(tmp_path, monkeypatch, {"engine": "sklearn"}, CHURN_ENGINE="spark").engine == "sklearn"
    assert stage(tmp_path, monkeypatch, CHURN_ENGINE="spark").engine == "spark"


def test_an_explicit_sklearn_that_cannot_fit_is_refused_in_one_line_naming_engine_spark(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sizing.MIB_PER_MILLION_ROWS, "train", 10**9)
    with pytest.raises(AirflowFailException) as refused:
        stage(tmp_path, monkeypatch, {"engine": "sklearn"})
    message = str(refused.value)
    assert "\n" not in message and message.startswith("train would need about ")
    assert message.endswith("or run it on Spark with engine=spark (the run param or CHURN_ENGINE); nothing was "
                            "started")


def test_an_engine_no_run_can_use_is_refused_before_anything_is_staged(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AirflowFailException, match=r"^engine must be one of auto, sklearn, spark, not 'dask'$"):
        stage(tmp_path, monkeypatch, {"engine": "dask"})
    assert not (tmp_path / "root").exists() or not any((tmp_path / "root").rglob("*.py")), "nothing was staged"


def test_a_region_without_the_spark_image_is_one_line_naming_the_override(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AirflowFailException) as refused:
        stage(tmp_path, monkeypatch, {"engine": "spark"}, CHURN_REGION="xx-east-9")
    assert "\n" not in str(refused.value) and "set CHURN_SPARK_IMAGE_URI" in str(refused.value)
    overridden = stage(tmp_path, monkeypatch, {"engine": "spark"}, CHURN_REGION="xx-east-9",
                       CHURN_SPARK_IMAGE_URI="123456789012.dkr.ecr.xx-east-9.amazonaws.com/spark:1")
    assert overridden.image_uri == "123456789012.dkr.ecr.xx-east-9.amazonaws.com/spark:1"
