"""``stage_inputs``' side of ``extract_customers``: a run with a source reads what the extract wrote,
and a Parquet input must carry the columns the data contract names, checked from the files' footers
before any paid job starts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.domain.contract_rules import rules
from churn_pipeline.domain.settings import Settings
from churn_pipeline.tasks._run import log, received_optional

if TYPE_CHECKING:  # imported where used: the DAG file imports this module when the scheduler parses it
    from churn_pipeline.services.objectstore import ObjectStore
    from churn_pipeline.services.parquet_inputs import ParquetFooter


def extracted_input(result: Any, params: dict[str, Any], settings: Settings, key: str) -> str | None:
    """The prefix extract_customers wrote this run's customers under (its ``result``), or None when it
    was skipped."""
    from churn_pipeline.domain.payloads import ExtractedCustomers

    extracted = received_optional(ExtractedCustomers, result)
    if extracted is None:
        return None
    if extracted.run_key != key:
        raise AirflowFailException(f"extract_customers wrote under run {extracted.run_key}, this run is {key}; "
                                   "clear extract_customers to extract again")
    requested = str(params["input_uri"]).strip()
    if requested != settings.default_input_uri:
        raise AirflowFailException(f"input_uri is {requested!r}, but this run reads its customers from the "
                                   f"{extracted.source} (CHURN_SOURCE_CONN_ID): leave input_uri at its default, or "
                                   "unset CHURN_SOURCE_CONN_ID to read a file")
    log.info("the run reads the %d customer row(s) extract_customers wrote from the %s under %s", extracted.rows,
             extracted.source, extracted.input_uri)
    return extracted.input_uri


def check_parquet_header(store: ObjectStore, input_uri: str, schema_uri: str) -> list[ParquetFooter]:
    """Fail before any job when a Parquet input lacks a column the schema names (footers only); the
    footers read, for sizing the jobs (none for a CSV input)."""
    from churn_pipeline.services.parquet_inputs import PARQUET_SUFFIX, NotParquetError, missing_columns, read_footer

    parquet = [uri for uri in store.list_uris(input_uri) if uri.endswith(PARQUET_SUFFIX)]
    if not parquet:
        return []
    schema = json.loads(store.read_bytes(schema_uri))
    try:
        footers = [read_footer(store, uri) for uri in parquet]
    except NotParquetError as error:
        raise AirflowFailException(f"input_uri: {error}") from None
    problems = missing_columns(footers, schema)
    if problems:
        raise AirflowFailException("the input breaks the data contract, so no job is started: " + "; ".join(problems))
    fewest = rules().MIN_ROWS
    if sum(footer.rows for footer in footers) < fewest:
        named = ", ".join(f"{footer.uri} ({footer.rows} row(s))" for footer in footers)
        raise AirflowFailException(f"the input holds {sum(footer.rows for footer in footers)} row(s), fewer than the "
                                   f"{fewest} training needs, so no job is started: {named}")
    return footers
