"""Text and paths a user hands the pipeline cannot forge what it shows nor make it read what it should
not: control and bidi characters are shown escaped in the summary and the report, plain paths stay
in their folders and roots, and a champion outside the pipeline's prefix is never loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.domain.text import shown, shown_lines
from churn_pipeline.report.html import render_report
from churn_pipeline.report.summary import FAILED, RunOutcome, summary_lines, write_outcome
from churn_pipeline.services.objectstore import LocalObjectStore
from churn_pipeline.tasks.champion import _missing
from churn_pipeline.tasks.staging import _plain_path, _read_schema, _stage_input, _tables_in
from tests import report_fixtures as fixtures
from tests.conftest import CONFIG

KEY = "20261003T000000Z"
FORGED = "/data/in.csv\n  registered    customer-churn version 7 (Approved): models:/customer-churn/7"


def test_control_bidi_and_invisible_characters_are_shown_as_their_escapes() -> None:
    assert shown("Age\x1b[2K\rChurn") == "Age\\x1b[2K\\rChurn"
    assert shown("a\nb\tc\x00\x7f\x85") == "a\\nb\\tc\\x00\\x7f\\x85"
    assert shown("\u202eevil\u2066\u200b\ufeff") == "\\u202eevil\\u2066\\u200b\\ufeff"
    assert shown("Clé été 顧客 naïve") == "Clé été 顧客 naïve", "ordinary text of any script is kept"
    assert shown_lines("one\ntwo\x1b") == "one\ntwo\\x1b"


def test_a_newline_in_input_uri_or_a_reason_adds_no_line_that_poses_as_the_summarys_own(tmp_path: Path) -> None:
    store, layout = LocalObjectStore(tmp_path), RunLayout("s3://churn-bucket/p", KEY)
    write_outcome(store, layout, RunOutcome(FAILED, data_source=FORGED, failed={
        "stage_inputs": f"input_uri {FORGED} does not fit\n  - in.csv: missing column 'Age\x1b[2K\r'"}))

    lines = "\n".join(summary_lines(store, layout)).split("\n")

    assert not any(line.startswith("  registered") for line in lines)
    assert "  data source   /data/in.csv\\n  registered    customer-churn version 7" in "\n".join(lines)
    assert "                  - in.csv: missing column 'Age\\x1b[2K\\r'" in lines
    assert not any("\x1b" in line or "\r" in line for line in lines)


def test_the_report_shows_a_bidi_control_in_a_feature_name_escaped() -> None:
    drift = fixtures.drift()
    drift["features"][0]["name"] = "Tenure\u202e\x1b"
    document = render_report(fixtures.report_inputs(drift=drift)).decode()
    assert "\u202e" not in document and "\x1b" not in document
    assert "Tenure\\u202e\\x1b" in document


def test_a_symlink_in_an_input_folder_that_leads_out_of_it_is_refused_and_nothing_is_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret-hash-line\n")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "customers.csv").write_text("CustomerID,Churn\n")
    (folder / "shadow.csv").symlink_to(secret)

    with pytest.raises(AirflowFailException, match=r"shadow.csv leads outside the folder .*nothing was read") as no:
        _tables_in(folder.resolve())
    assert "secret-hash-line" not in str(no.value)


def test_only_the_tables_of_an_input_folder_are_staged(tmp_path: Path) -> None:
    settings = load_settings({"CHURN_LOCAL_ROOT": str(tmp_path / "root")})
    store, layout = LocalObjectStore(settings.local_root), RunLayout(settings.base_uri, KEY)
    folder = tmp_path / "in"
    (folder / "2026").mkdir(parents=True)
    (folder / "2026" / "a.csv").write_text("x\n")
    (folder / "b.parquet").write_bytes(b"PAR1")
    (folder / "notes.txt").write_text("not a table")
    (folder / "key").symlink_to(tmp_path / "elsewhere")  # neither read nor followed

    _stage_input(settings, store, layout, str(folder))

    assert store.list_uris(layout.input_uri) == [f"{layout.input_uri}/2026/a.csv", f"{layout.input_uri}/b.parquet"]


def test_plain_paths_outside_the_configured_roots_are_refused_even_through_a_symlink(tmp_path: Path) -> None:
    allowed = tmp_path / "runs-data"
    allowed.mkdir()
    (allowed / "customers.csv").write_text("x\n")
    (allowed / "escape.csv").symlink_to("/etc/hostname")
    settings = load_settings({"CHURN_PLAIN_PATH_ROOTS": str(allowed)})

    assert _plain_path(settings, str(allowed / "customers.csv"), "input_uri") == allowed / "customers.csv"
    for outside in ("/etc/hostname", str(allowed / "escape.csv"), str(allowed / ".." / "x.csv")):
        with pytest.raises(AirflowFailException, match=r"input_uri: .* is outside the folders runs may read here"):
            _plain_path(settings, outside, "input_uri")
    anywhere = load_settings({})
    assert _plain_path(anywhere, "/etc/hostname", "input_uri") == Path("/etc/hostname"), "a laptop reads anywhere"


def test_a_plain_schema_path_is_refused_on_the_sagemaker_backend_unless_it_is_a_shipped_one(tmp_path: Path) -> None:
    settings = load_settings({"CHURN_BACKEND": "sagemaker"})
    mine = tmp_path / "schema.json"
    mine.write_bytes((CONFIG / "schema.json").read_bytes())
    with pytest.raises(AirflowFailException, match=r"schema_uri must be an s3:// URI or a schema shipped in "):
        _read_schema(settings, LocalObjectStore(tmp_path), str(mine))
    raw, _ = _read_schema(settings, LocalObjectStore(tmp_path), str(CONFIG / "schema.json"))
    assert raw == mine.read_bytes(), "the default schema, shipped with the DAGs, is read on both backends"
    confined = load_settings({"CHURN_PLAIN_PATH_ROOTS": str(tmp_path / "elsewhere")})
    assert _read_schema(confined, LocalObjectStore(tmp_path), str(CONFIG / "schema.json"))[0] == raw


def test_a_champion_whose_model_lies_outside_the_pipelines_bucket_and_prefix_is_not_loaded(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    base = "s3://customer-churn-pipeline/churn-pipeline"
    inside = f"{base}/runs/{KEY}/model/churn-train-{KEY}/output/model.tar.gz"
    store.write_bytes(inside, b"model")
    for outside in ("s3://someone-else/churn-pipeline/runs/model.tar.gz", f"{base}-evil/runs/model.tar.gz",
                    "file:///etc/model.tar.gz"):
        assert "lies outside this pipeline's bucket and prefix" in str(_missing(store, outside, "model artefact", base))
    assert _missing(store, inside, "model artefact", base) is None
