"""extract_customers through real Airflow on the local backend: a real PostgreSQL server (its own
cluster, password authentication, loopback) and an HTTP export served on loopback (the README's
`make demo-sqlite` runs in test_readme.py). Bad sources fail before any job, in the source's words,
retried only when a retry may pass; no password reaches a log. The operator is also run in this
process against the export server and an unreachable database, where the unit tests cannot go
(they open no socket)."""

from __future__ import annotations

import base64
import json
import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.operators.extraction import SourceUnavailable
from churn_pipeline.services.objectstore import LocalObjectStore
from churn_pipeline.tooling.sample_data import SAMPLE_ROWS, SAMPLE_SEED, generate, typed, write_sample
from tests.e2e.moto_server import free_port
from tests.e2e.postgres import PostgresCluster
from tests.unit.extract_harness import LAYOUT, local_source, run_extract

pytestmark = pytest.mark.e2e
__all__ = ["local_source"]  # the fixture, imported for the in-process tests

EVERY_TASK = ("extract_customers", "stage_inputs", "preprocess", "train", "evaluate", "check_accuracy",
              "register_model")
COLUMNS = {"CustomerID": "text", "Gender": "text", "Age": "integer", "MonthlyCharges": "numeric(8,2)",
           "TotalCharges": "numeric(10,2)", "Tenure": "integer", "Contract": "text", "InternetService": "text",
           "TechSupport": "text", "StreamingTV": "text", "PaymentMethod": "text", "Churn": "text"}


def load_customers(cluster: PostgresCluster) -> None:
    """The bundled sample (10,000 customers and 100 duplicate rows) as a CRM table would hold them,
    and an empty table of the same shape."""
    customers = typed(generate(SAMPLE_ROWS, SAMPLE_SEED))
    rows = customers.astype(object).where(customers.notna(), None).itertuples(index=False, name=None)
    with cluster.connect() as admin:
        admin.execute(f"CREATE DATABASE {cluster.database}")
    columns = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS.items())
    with cluster.connect(cluster.database) as crm:
        crm.execute(f"CREATE TABLE customers ({columns})")
        crm.execute(f"CREATE TABLE former_customers ({columns})")
        with crm.cursor().copy("COPY customers FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


@pytest.fixture(scope="module")
def postgres():
    cluster = PostgresCluster()
    try:
        load_customers(cluster)
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture()
def from_postgres(airflow_project, postgres: PostgresCluster):
    airflow_project.extra_env.update({"AIRFLOW_CONN_CHURN_CRM": postgres.airflow_connection(),
                                      "CHURN_SOURCE_CONN_ID": "churn_crm",
                                      "CHURN_SOURCE_QUERY": "SELECT * FROM customers"})
    return airflow_project


def assert_no_job_ran(project) -> None:
    assert not (project.local_root / "jobs").exists(), "a bad source must fail before any job"


def test_customers_from_postgres_are_extracted_trained_on_and_registered(from_postgres, postgres) -> None:
    import pyarrow.parquet as pq

    key = "20261201T000000Z"
    outcome = from_postgres.dags_test("2026-12-01")

    assert outcome.returncode == 0, outcome.log[-6000:]
    assert all(outcome.states[task] == "success" for task in EVERY_TASK), outcome.states
    run = from_postgres.run_prefix(key)
    assert pq.read_metadata(run / "input" / "customers.parquet").num_rows == 10_100
    quality = json.loads((run / "preprocessing" / "quality" / "data_quality.json").read_text())
    assert (quality["rows_read"], quality["duplicate_rows"], quality["rows_used"]) == (10_100, 100, 10_000)
    description = json.loads((from_postgres.local_root / "jobs" / f"churn-preprocess-{key}" /
                              "description.json").read_text())
    data_input = next(item for item in description["ProcessingInputs"] if item["InputName"] == "data")
    assert data_input["S3Input"]["S3Uri"].endswith(f"/runs/{key}/input")  # preprocess read the extract
    (version,) = from_postgres.versions()
    assert version["tags"]["data_source"].startswith("postgres connection 'churn_crm': s3://")
    assert float(version["tags"]["accuracy"]) >= 0.75
    assert postgres.password not in from_postgres.everything_logged(outcome)


def test_a_broken_query_fails_the_extract_once_in_the_databases_words(from_postgres) -> None:
    from_postgres.extra_env["CHURN_RETRIES"] = "2"

    outcome = from_postgres.dags_test("2026-12-02", {"source_query": "SELECT * FROM customer"})

    assert outcome.returncode == 1
    assert outcome.states["extract_customers"] == "failed"
    assert outcome.states["stage_inputs"] == outcome.states["preprocess"] == "upstream_failed"
    assert from_postgres.tries("2026-12-02", "extract_customers") == 1, "the same query fails again: no retry"
    assert 'relation "customer" does not exist' in outcome.log
    assert_no_job_ran(from_postgres)
    (message,) = from_postgres.notifications()
    assert message["reason"] == "pipeline_failed" and message["failed_tasks"] == ["extract_customers"]
    assert 'relation "customer" does not exist' in message["message"]


def test_an_empty_table_fails_with_no_rows_before_any_job(from_postgres) -> None:
    from_postgres.extra_env["CHURN_RETRIES"] = "2"

    outcome = from_postgres.dags_test("2026-12-03", {"source_query": "SELECT * FROM former_customers"})

    assert outcome.states["extract_customers"] == "failed"
    assert from_postgres.tries("2026-12-03", "extract_customers") == 1
    assert "the query returned no rows" in outcome.log
    assert_no_job_ran(from_postgres)
    assert [m["failed_tasks"] for m in from_postgres.notifications()] == [["extract_customers"]]


def test_a_result_that_breaks_the_schema_fails_at_stage_inputs(from_postgres) -> None:
    outcome = from_postgres.dags_test("2026-12-04", {"source_query": 'SELECT "CustomerID", "Age" FROM customers'})

    assert outcome.states["extract_customers"] == "success"
    assert outcome.states["stage_inputs"] == "failed"
    assert re.search(r"customers\.parquet lacks the column\(s\) 'Churn', 'MonthlyCharges'", outcome.log)
    assert_no_job_ran(from_postgres)
    assert [m["failed_tasks"] for m in from_postgres.notifications()] == [["stage_inputs"]]


def test_a_stopped_server_is_retried_and_then_notified(from_postgres, postgres: PostgresCluster) -> None:
    from_postgres.extra_env["CHURN_RETRIES"] = "1"
    postgres.stop()
    try:
        outcome = from_postgres.dags_test("2026-12-05")
    finally:
        postgres.start()

    assert outcome.states["extract_customers"] == "failed"
    assert from_postgres.tries("2026-12-05", "extract_customers") == 2, "a server that is down may come back"
    assert "Connection refused" in outcome.log and "may pass on a retry" in outcome.log
    assert_no_job_ran(from_postgres)
    (message,) = from_postgres.notifications()
    assert message["failed_tasks"] == ["extract_customers"] and "Connection refused" in message["message"]
    assert postgres.password not in from_postgres.everything_logged(outcome)


# ---------------------------------------------------------------- an HTTP export on loopback

EXPORT_LOGIN, EXPORT_PASSWORD = "churn", "Export-pw-for-churn"


class ExportHandler(SimpleHTTPRequestHandler):
    """A file server that wants HTTP basic authentication, as an export endpoint would."""

    expected = "Basic " + base64.b64encode(f"{EXPORT_LOGIN}:{EXPORT_PASSWORD}".encode()).decode()

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != self.expected:
            self.send_error(401, "credentials required")
            return
        if self.path == "/busy.parquet":
            self.send_error(503, "exporting, try later")
            return
        super().do_GET()

    def log_message(self, *args) -> None:  # keep the test's output quiet
        pass


@pytest.fixture()
def export_server(tmp_path: Path):
    folder = tmp_path / "exports"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(ExportHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, server.server_address[1]
    server.shutdown()
    server.server_close()


def test_an_http_export_on_loopback_is_extracted_and_trained_on(airflow_project, export_server) -> None:
    folder, port = export_server
    write_sample(folder / "customers.parquet", SAMPLE_ROWS, SAMPLE_SEED)
    airflow_project.extra_env.update({
        "AIRFLOW_CONN_CHURN_EXPORT": json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port,
                                                 "schema": "http", "login": EXPORT_LOGIN,
                                                 "password": EXPORT_PASSWORD}),
        "CHURN_SOURCE_CONN_ID": "churn_export", "CHURN_SOURCE_ENDPOINT": "customers.parquet"})

    outcome = airflow_project.dags_test("2026-12-06")

    assert outcome.returncode == 0, outcome.log[-6000:]
    assert all(outcome.states[task] == "success" for task in EVERY_TASK), outcome.states
    run = airflow_project.run_prefix("20261206T000000Z")
    assert (run / "input" / "customers.parquet").read_bytes() == (folder / "customers.parquet").read_bytes()
    (version,) = airflow_project.versions()
    assert version["tags"]["data_source"].startswith("http connection 'churn_export'")
    assert EXPORT_PASSWORD not in airflow_project.everything_logged(outcome)


def export_connection(port: int, password: str = EXPORT_PASSWORD) -> str:
    return json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http",
                       "login": EXPORT_LOGIN, "password": password})


def test_an_export_is_stored_as_it_came_and_a_bad_answer_is_judged(local_source, export_server,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    folder, port = export_server
    write_sample(folder / "customers.parquet", 2_000, 5)
    (folder / "customers.csv").write_text("CustomerID,Churn\nC1,Yes\n")
    monkeypatch.setenv("AIRFLOW_CONN_CHURN_SOURCE", export_connection(port))
    monkeypatch.delenv("CHURN_SOURCE_QUERY")
    monkeypatch.setenv("CHURN_SOURCE_ENDPOINT", "customers.parquet")
    store = LocalObjectStore(local_source)

    result = run_extract()
    assert (result["rows"], result["transfer"]) == (2_020, "download")
    assert store.read_bytes(f"{LAYOUT.input_uri}/customers.parquet") == (folder / "customers.parquet").read_bytes()

    monkeypatch.setenv("CHURN_SOURCE_ENDPOINT", "missing.parquet")
    with pytest.raises(AirflowFailException, match="404"):
        run_extract()
    monkeypatch.setenv("CHURN_SOURCE_ENDPOINT", "busy.parquet")
    with pytest.raises(SourceUnavailable, match="503"):
        run_extract()
    monkeypatch.setenv("CHURN_SOURCE_ENDPOINT", "customers.csv")
    with pytest.raises(AirflowFailException, match=r"did not give Parquet.*is not a Parquet file") as refused:
        run_extract()
    assert "CustomerID" not in str(refused.value), "no byte of a file that is not a table is quoted"
    assert store.list_uris(LAYOUT.input_uri) == []
    monkeypatch.setenv("AIRFLOW_CONN_CHURN_SOURCE", export_connection(port, "not-the-password"))
    with pytest.raises(AirflowFailException, match="401") as raised:
        run_extract()
    assert "not-the-password" not in str(raised.value)


def test_an_unreachable_database_may_pass_on_a_retry(local_source, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_CHURN_SOURCE", f"postgresql://churn:secret-pw@127.0.0.1:{port}/customers")
    with pytest.raises(SourceUnavailable, match="Connection refused") as raised:
        run_extract()
    assert not isinstance(raised.value, AirflowFailException)
    assert "secret-pw" not in str(raised.value)
