"""Every DAG file in dags/, as Airflow's own DagBag loads it (the way the dag-processor does), on both
backends: it imports without an error and holds the DAG its name says; and every DAG has tags, an
owner other than Airflow's default, a doc, and retries on every task, for the transient faults
retries are for, unless its doc says why it does not retry."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import PROJECT

DAGS_FOLDER = PROJECT / "dags"
DAG_FILES = sorted(DAGS_FOLDER.glob("*.py"))
DAG_IDS = [path.stem for path in DAG_FILES]  # the file name is the dag_id
BACKENDS = ("local", "sagemaker")
ROLE = "arn:aws:iam::123456789012:role/churn"
AIRFLOWS_DEFAULT_OWNER = "airflow"
# A DAG that does not retry says so in its doc, in a sentence of its own ("... is not retried, because
# ..."): the design keeps retries for transient faults, so going without them is a decision to explain.
SAYS_IT_DOES_NOT_RETRY = re.compile(r"\b(no|not|never|without)\b[^.]*\bretr(y|ies|ied)\b", re.I)


def load_bag(backend: str):
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("CHURN_BACKEND", backend)
        environment.setenv("CHURN_ROLE_ARN", ROLE)
        return DagBag(dag_folder=str(DAGS_FOLDER))


@pytest.fixture(scope="module", params=BACKENDS)
def bag(request: pytest.FixtureRequest) -> Iterator:
    yield load_bag(request.param)


def dag_of(bag, dag_id: str):
    assert dag_id in bag.dags, f"{dag_id} did not load (see the import errors test)"
    return bag.dags[dag_id]


def test_the_dags_folder_holds_dag_files() -> None:
    assert DAG_FILES, f"no DAG file in {DAGS_FOLDER}"


def test_every_dag_file_imports_without_an_error(bag) -> None:
    errors = {path.replace(str(PROJECT) + "/", ""): message.strip().splitlines()[-1]
              for path, message in bag.import_errors.items()}
    assert errors == {}


def test_every_dag_file_holds_the_dag_its_name_says(bag) -> None:
    by_file = {(dag.dag_id, dag.fileloc) for dag in bag.dags.values()}
    assert by_file == {(path.stem, str(path)) for path in DAG_FILES}


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_every_dag_has_tags_a_doc_and_an_owner_of_its_own(bag, dag_id: str) -> None:
    dag = dag_of(bag, dag_id)
    assert dag.tags, "tags: how the UI filters DAGs"
    assert dag.doc_md and dag.doc_md.strip(), "doc_md: what the DAG does, shown in the UI"
    owners = {task.task_id: task.owner for task in dag.tasks}
    assert all(owner and owner != AIRFLOWS_DEFAULT_OWNER for owner in owners.values()), owners


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_every_task_retries_or_the_dags_doc_says_why_not(bag, dag_id: str) -> None:
    dag = dag_of(bag, dag_id)
    not_retried = sorted(task.task_id for task in dag.tasks if task.retries < 1)
    if dag.default_args.get("retries", 0) >= 1 and not not_retried:
        return
    says_why = SAYS_IT_DOES_NOT_RETRY.search(dag.doc_md or "") is not None
    assert says_why, \
        f"{dag_id}: default_args retries {dag.default_args.get('retries')}, tasks without retries {not_retried}, " \
        "and its doc_md does not say why"
