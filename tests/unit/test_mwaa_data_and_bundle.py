"""MWAA's images as the project keeps them (deploy/mwaa/), and the bundle's own rules: the kept files
are their source's content at the recorded commit (their git blob ids recomputed), the pins are the
image's bill of materials, the docs name exactly the kept versions; a bundle is refused without the
sagemaker backend's settings, carries every setting given to MWAA in startup.sh, and never replaces a
folder that is not an earlier bundle; its CLI answers --help."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from churn_pipeline.tooling.bundle import (
    BUNDLE_MARKER,
    MWAA_DIR,
    MWAA_VERSIONS,
    BundleError,
    build,
    check_buildable,
    main,
    mwaa_requirements,
    settings_for_mwaa,
    startup_script,
)
from churn_pipeline.tooling.mwaa_twin import (
    BOM,
    bom_packages,
    git_blob_id,
    image_packages,
    source_record,
    stored_content,
    twin_pins,
)
from tests.conftest import PROJECT

SAGEMAKER_ENV = {"CHURN_REGION": "eu-west-1", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/jobs",
                 "CHURN_SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:team", "CHURN_BUCKET": "team-ml"}


def test_every_kept_file_is_its_sources_content_at_the_recorded_commit() -> None:
    record = source_record()
    assert record["repository"] == "https://github.com/aws/amazon-mwaa-docker-images"
    assert re.fullmatch(r"[0-9a-f]{40}", str(record["commit"]))
    files = record["files"]
    assert isinstance(files, dict)
    kept = {path.relative_to(MWAA_DIR).as_posix() for path in MWAA_DIR.rglob("*") if path.is_file()} - {"SOURCE.json"}
    assert kept == set(files), "every file in deploy/mwaa/ has its source recorded, and only those"
    for relative, source in files.items():
        version = relative.split("/")[0]
        assert source["path"].startswith(f"images/airflow/{version}/")
        assert git_blob_id(stored_content(relative)) == source["blob"], f"{relative} drifted from {source['path']}"


def test_the_kept_versions_are_the_bundles_and_each_has_pins_and_both_constraints() -> None:
    assert sorted(path.name for path in MWAA_DIR.iterdir() if path.is_dir()) == list(MWAA_VERSIONS)
    for version in MWAA_VERSIONS:
        assert {path.name for path in (MWAA_DIR / version).iterdir()} == {
            BOM, "airflow_constraints.txt", "mwaa_essential_constraints.txt"}


@pytest.mark.parametrize("version, count, amazon", [("3.2.1", 211, "9.25.0"), ("3.3.1", 215, "9.34.0")])
def test_the_pins_are_every_distribution_of_the_images_bill_of_materials(version: str, count: int,
                                                                         amazon: str) -> None:
    packages = image_packages(version)
    assert len(packages) == count
    assert packages["apache-airflow"] == version and packages["apache-airflow-providers-amazon"] == amazon
    assert packages["fluent-logger"] == "0.11.1"  # an entry whose licence runs over several lines
    lowered = {name.lower() for name in packages}
    assert not lowered & {"matplotlib", "pandas", "numpy", "pyarrow", "mlflow"}, "what the bundle must bring"
    pins = twin_pins(version)
    assert len(pins) == count - 1 and not [pin for pin in pins if pin.lower().startswith("psycopg2==")]


def test_a_bill_of_materials_entry_starts_after_a_blank_line_with_name_then_version() -> None:
    listing = ("This Docker image includes the following third-party software/licensing:\nFlask\n3.1.3\nBSD\n"
               "https://flask\n/usr/local/x/LICENSE\nCopyright\n\nsome text\n2.0\n\nzipp\n3.23.0\nMIT\n")
    assert bom_packages(listing) == {"Flask": "3.1.3", "zipp": "3.23.0"}


def test_the_docs_name_exactly_the_mwaa_versions_the_rehearsal_runs() -> None:
    text = (PROJECT / "docs" / "aws.md").read_text()
    named = set(re.findall(r"\bMWAA (?:Airflow )?(3\.\d+\.\d+)", text))
    named |= set(re.findall(r"Airflow (3\.\d+\.\d+) on MWAA", text))
    assert named == set(MWAA_VERSIONS)


def test_a_bundle_without_the_sagemaker_settings_is_refused_in_one_line() -> None:
    with pytest.raises(BundleError) as refused:
        check_buildable({"CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/jobs"})
    message = str(refused.value)
    assert "\n" not in message and "CHURN_REGION" in message and "CHURN_SNS_TOPIC_ARN" in message
    assert "CHURN_ROLE_ARN" not in message.split("needs")[1]
    with pytest.raises(BundleError, match="CHURN_BUCKET"):  # a bad value: the settings' own message, one line
        check_buildable({**SAGEMAKER_ENV, "CHURN_BUCKET": "Not A Bucket"})


def test_startup_sh_carries_every_setting_given_at_build_and_the_backend() -> None:
    given = settings_for_mwaa({**SAGEMAKER_ENV, "CHURN_SOURCE_QUERY": "SELECT * FROM t WHERE x = 'it''s'",
                               "CHURN_LOCAL_ROOT": "/home/me/store", "CHURN_BACKEND": "local", "HOME": "/root"})
    assert given == {"CHURN_BUCKET": "team-ml", "CHURN_REGION": "eu-west-1", "CHURN_ROLE_ARN": SAGEMAKER_ENV[
        "CHURN_ROLE_ARN"], "CHURN_SNS_TOPIC_ARN": SAGEMAKER_ENV["CHURN_SNS_TOPIC_ARN"],
        "CHURN_SOURCE_QUERY": "SELECT * FROM t WHERE x = 'it''s'"}
    script = startup_script("img:1", given)
    assert "export CHURN_BACKEND=sagemaker\n" in script and "export CHURN_IMAGE_URI=img:1\n" in script
    assert "export CHURN_SOURCE_QUERY='SELECT * FROM t WHERE x = '\"'\"'it'\"'\"''\"'\"'s'\"'\"''\n" in script


def test_requirements_install_from_the_shipped_wheels_alone_when_there_are_wheels() -> None:
    online, offline = mwaa_requirements(), mwaa_requirements(wheels=True)
    lines = [line for line in online.splitlines() if not line.startswith("#")]
    assert lines == ["matplotlib", "pandas", "pyarrow"]
    assert [line for line in offline.splitlines() if not line.startswith("#")] == [
        "--no-index", "--find-links /usr/local/airflow/plugins", "matplotlib", "pandas", "pyarrow"]
    assert not re.search(r"-c |--constraint ", online + offline), "MWAA then adds its own constraints"


def test_a_folder_that_is_not_an_earlier_bundle_is_never_replaced(tmp_path: Path) -> None:
    precious = tmp_path / "out"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    settings = check_buildable(SAGEMAKER_ENV)

    with pytest.raises(BundleError, match="is not an earlier MWAA bundle"):
        build(precious, settings, environ=SAGEMAKER_ENV)
    assert (precious / "notes.txt").read_text() == "mine"

    first = build(tmp_path / "bundle", settings, environ=SAGEMAKER_ENV)
    (first / "dags" / "stale.py").write_text("")
    again = build(first, settings, environ=SAGEMAKER_ENV)  # an earlier bundle is replaced whole
    assert (again / BUNDLE_MARKER).is_file() and not (again / "dags" / "stale.py").exists()
    assert "export CHURN_REGION=eu-west-1" in (again / "startup.sh").read_text()
    assert "eu-west-1" in (again / "startup.sh").read_text().split("CHURN_IMAGE_URI=")[1]
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == [], "no scratch left"


def test_the_bundle_cli_answers_help_and_refuses_in_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0 and "--wheels" in capsys.readouterr().out
    assert not Path("--help").exists()
    for name in [name for name in os.environ if name.startswith("CHURN_")]:
        monkeypatch.delenv(name)
    assert main([str(tmp_path / "b")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: an MWAA bundle runs the sagemaker backend")
    assert not (tmp_path / "b").exists()


def test_the_trust_policy_lets_sagemaker_alone_assume_the_execution_role() -> None:
    policy = json.loads((PROJECT / "deploy" / "iam" / "sagemaker-trust-policy.json").read_text())
    (statement,) = policy["Statement"]
    assert statement == {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                         "Action": "sts:AssumeRole"}


def test_the_bundle_holds_no_plugin() -> None:
    """The console links need none in Airflow 3, and one importing the package fails to load on MWAA."""
    assert not list((PROJECT / "plugins").glob("*.py"))
