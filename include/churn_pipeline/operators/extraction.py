"""``extract_customers``: the customers from their source into the run's own input prefix, as Parquet,
read the way the source connection's type asks (``transfers.py``: the connection's DB-API hook, a
Redshift UNLOAD, or an HTTP export), through the providers' public hooks; skipped when no source is
configured (the run then reads ``input_uri``).

A source that fails the same way on every try (a broken query, a missing table, an empty result, an
export that is not Parquet, a misconfigured source) fails the task at once, in the source's own words
and without retrying; one that may come back (a server down, a lost connection, a busy database) fails
the try and Airflow retries it. Credentials stay in the Airflow connections: only connection ids and
the query reach this code and the log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from churn_pipeline.domain.settings import load_settings
from churn_pipeline.domain.xcom_keys import FAILURE_KEY

if TYPE_CHECKING:  # imported when the task runs: the scheduler's parse of the DAG file stays light
    from churn_pipeline.domain.extraction import ExtractPlan
    from churn_pipeline.services.objectstore import ObjectStore
    from churn_pipeline.services.parquet_inputs import ParquetFooter


class SourceUnavailable(AirflowException):
    """The source failed in a way a retry may cure (Airflow retries the task)."""


def _connection_type(conn_id: str) -> str | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id).conn_type
    except AirflowNotFoundException:
        raise AirflowFailException(f"CHURN_SOURCE_CONN_ID names the connection '{conn_id}', which Airflow does not "
                                   "have: create it (UI, `airflow connections add`, an AIRFLOW_CONN_* variable or "
                                   "a secrets backend)") from None


def _unload_role(conn_id: str) -> str:
    """The role UNLOAD writes as: never access keys, which would stand in the statement the hook logs."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        extra = BaseHook.get_connection(conn_id).extra_dejson
    except AirflowNotFoundException:
        raise AirflowFailException(f"CHURN_SOURCE_UNLOAD_CONN_ID names the connection '{conn_id}', which Airflow "
                                   "does not have") from None
    role_arn = extra.get("role_arn")
    if not role_arn or not isinstance(role_arn, str):
        raise AirflowFailException(f"the AWS connection '{conn_id}' (CHURN_SOURCE_UNLOAD_CONN_ID) names no role_arn "
                                   "in its extra: Redshift's UNLOAD writes as that role (see docs/aws.md)")
    return role_arn


class ExtractCustomersOperator(BaseOperator):
    """Reads the configured source into ``runs/<run key>/input/`` as Parquet; returns ``ExtractedCustomers``."""

    ui_color = "#e4ecf7"
    purpose = "train on"  # what an empty result leaves nothing to do

    def _layout(self, base_uri: str, key: str) -> Any:
        from churn_pipeline.domain.layout import RunLayout

        return RunLayout(base_uri, key)

    def execute(self, context: Any) -> dict[str, Any]:
        from churn_pipeline.domain.extraction import SourceError, SourceKind, plan_extract, unload_statement
        from churn_pipeline.domain.layout import run_key
        from churn_pipeline.domain.payloads import ExtractedCustomers
        from churn_pipeline.services import backend

        settings = load_settings()
        query_param = str(context["params"].get("source_query") or "").strip()
        if not settings.source_conn_id:
            if query_param:
                raise AirflowFailException("the source_query param was given, but no source is configured: set "
                                           "CHURN_SOURCE_CONN_ID to the connection the query runs on")
            raise AirflowSkipException("no source configured (CHURN_SOURCE_CONN_ID): this run reads input_uri")
        layout = self._layout(settings.base_uri, run_key(context.get("logical_date"), context["dag_run"].run_after))
        try:
            plan = plan_extract(settings, _connection_type(settings.source_conn_id), query_param, layout)
            unload = None
            if plan.kind is SourceKind.REDSHIFT:
                assert plan.unload_conn_id is not None  # plan_extract requires it for Redshift
                unload = unload_statement(plan, _unload_role(plan.unload_conn_id))
        except SourceError as error:
            raise AirflowFailException(str(error)) from None
        store = backend.object_store(settings)
        self._clear(store, plan.prefix_uri)  # what an earlier try of this run left; nothing else lives here
        self.log.info("extracting the customers from the %s (%s) into %s%s", plan.source, plan.kind.value,
                      plan.prefix_uri, f"; query: {plan.query}" if plan.query else "")
        self._transfer(plan, store, unload, context)
        footers = self._check_result(plan, store)
        extracted = ExtractedCustomers(
            run_key=layout.key, input_uri=plan.prefix_uri, objects=tuple(footer.uri for footer in footers),
            rows=sum(footer.rows for footer in footers), source=plan.source, transfer=plan.kind.value)
        self.log.info("extracted %d customer row(s) from the %s into %s", extracted.rows, plan.source,
                      ", ".join(extracted.objects))
        return extracted.to_xcom()

    def _clear(self, store: ObjectStore, prefix_uri: str) -> None:
        for uri in store.list_uris(prefix_uri):
            store.delete(uri)

    def _transfer(self, plan: ExtractPlan, store: ObjectStore, unload: str | None, context: Any) -> None:
        from churn_pipeline.domain.extraction import SourceKind, diagnose
        from churn_pipeline.domain.payloads import JobFailure
        from churn_pipeline.operators.transfers import extract  # pandas, requests, the database drivers

        try:
            extract(plan, store, unload)
        except Exception as error:
            diagnosis = diagnose(error)
            reason = f"the {plan.source} failed: {diagnosis.message}"
            context["ti"].xcom_push(key=FAILURE_KEY, value=JobFailure(job_name=plan.source, reason=reason).to_xcom())
            if diagnosis.transient:
                raise SourceUnavailable(f"{reason} (may pass on a retry)") from error
            asked = "request" if plan.kind is SourceKind.HTTP else "query"
            raise AirflowFailException(f"{reason} (not retried: the same {asked} fails the same way)") from None

    def _check_result(self, plan: ExtractPlan, store: ObjectStore) -> list[ParquetFooter]:
        from churn_pipeline.services.parquet_inputs import PARQUET_SUFFIX, NotParquetError, read_footer

        objects = store.list_uris(plan.prefix_uri)
        strays = [uri for uri in objects if not uri.endswith(PARQUET_SUFFIX)]
        if strays:
            raise AirflowFailException(f"the {plan.kind.value} wrote objects that are not named {PARQUET_SUFFIX}: "
                                       f"{', '.join(strays)}")
        try:
            footers = [read_footer(store, uri) for uri in objects]
        except NotParquetError as error:
            self._clear(store, plan.prefix_uri)
            raise AirflowFailException(f"the {plan.source} did not give Parquet: {error}") from None
        if sum(footer.rows for footer in footers) == 0:
            self._clear(store, plan.prefix_uri)
            raise AirflowFailException(f"{plan.empty_result} (the {plan.source}); there is nothing to {self.purpose}")
        return footers


class ExtractLabelsOperator(ExtractCustomersOperator):
    """The outcome DAG's ``extract_labels``: the current customers, with their churn labels, from the same
    source and in the same ways as training's extract, into ``outcomes/labels/<run key>/``; skipped when
    no source is configured (the run then reads ``labels_uri``)."""

    purpose = "measure"

    def _layout(self, base_uri: str, key: str) -> Any:
        from churn_pipeline.domain.layout import LabelsLayout

        return LabelsLayout(base_uri, key)
