"""Model registry: a new version per passing run, awaiting manual approval, never two for one run;
and the champion, the newest approved version, that later runs must beat.

``sagemaker`` backend: SageMaker Model Registry (a model package version in the configured group);
the champion is the latest ``Approved`` package of the group, approved in SageMaker (console, CLI).
``local`` backend: MLflow's Model Registry on SQLite at ``<local root>/mlflow.db``; the approval
status is the version tag ``approval_status``, so ``mlflow ui`` shows versions, metrics and status,
and the champion is the version carrying the alias ``champion``, which approving or rejecting a
version moves to the newest approved one (``churn approve N``).
Both look for an existing version of the same run first, so registering twice returns the first.

Finding a run's version on SageMaker costs the same after a year of nightly versions as on the first
night: no call lists or describes the group's versions. The run's prefix holds a registration record
(``runs/<run key>/registration.json``: group, ARN, version), written right after the version is
created; ``find`` reads it and describes that one version. The crash window between creating the
version and writing the record is closed by ``CreateModelPackage``'s ``ClientToken``, derived from the
group and the run, with which SageMaker answers a repeated call with the version it already made.
Why not the alternatives: ``Search`` on ``CustomerMetadataProperties.run_key`` is not implemented by
moto (it refuses the property name), so it could not be tested here, and SageMaker's search index is
not documented to be read-after-write; a ``ClientToken`` alone has no documented lifetime, and a rerun
of the same date through ``airflow dags test`` sends other parameters (a new run id) under it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from churn_pipeline.domain.engine import engine_of_version
from churn_pipeline.domain.layout import RUN_KEY_TAG, RunLayout
from churn_pipeline.domain.model_defaults import comparable_metric_names
from churn_pipeline.domain.payloads import ModelVersionRef, RegisteredVersion
from churn_pipeline.services.locks import file_lock
from churn_pipeline.services.objectstore import ObjectStore, ObjectStoreError

PENDING = "PendingManualApproval"
APPROVED = "Approved"
REJECTED = "Rejected"
APPROVAL_STATUSES = (PENDING, APPROVED, REJECTED)
APPROVAL_TAG = "approval_status"
APPROVAL_DESCRIPTION_TAG = "approval_description"  # who, when, how and why: SageMaker's ApprovalDescription
CHAMPION_ALIAS = "champion"
STATISTICS_TAG = "statistics_uri"
MAX_PENDING = 20  # unanswered reviews reject themselves after days: more waiting than this is a backlog
OUTCOMES_TAG = "outcomes_uri"  # the outcomes page of the version's scores, once a cohort was measured
EXPERIMENT = "customer-churn-pipeline"


class ModelRegistry(Protocol):
    def register(self, request: dict[str, Any]) -> RegisteredVersion:
        """Register from a ``CreateModelPackage`` request; this run's existing version if it has one."""

    def champion(self, group: str) -> ModelVersionRef | None:
        """The newest approved version; None when nothing is approved (a new deployment)."""

    def newest(self, group: str) -> ModelVersionRef | None:
        """The newest registered version, whatever its status; None when there is none."""

    def set_approval(self, group: str, version: int, status: str, description: str | None = None,
                     identifier: str | None = None) -> int | None:
        """Record a decision on a version; the champion's version afterwards (None: none approved)."""

    def pending(self, group: str) -> list[ModelVersionRef]:
        """The versions awaiting a decision, newest first (at most ``MAX_PENDING``)."""

    def link_outcomes(self, identifier: str, page_uri: str) -> None:
        """Record on the version where the outcomes of its scores are shown (``OUTCOMES_TAG``)."""


def _metrics_of(metadata: dict[str, Any]) -> dict[str, float]:
    found = {}
    for name in comparable_metric_names():
        try:
            found[name] = float(metadata[name])
        except (KeyError, TypeError, ValueError):
            continue
    return found


class SageMakerRegistry:
    """SageMaker Model Registry; ``store`` and ``base_uri`` hold each run's registration record."""

    def __init__(self, client: Any, store: ObjectStore, base_uri: str):
        self.client = client
        self.store = store
        self.base_uri = base_uri

    def ensure_group(self, group: str) -> None:
        try:
            self.client.describe_model_package_group(ModelPackageGroupName=group)
        except self.client.exceptions.ClientError as error:
            if error.response["Error"]["Code"] != "ValidationException":
                raise
            self.client.create_model_package_group(
                ModelPackageGroupName=group,
                ModelPackageGroupDescription="Customer churn models registered by the nightly Airflow pipeline")

    def _record_uri(self, run_key: str) -> str:
        return RunLayout(self.base_uri, run_key).registration_record_uri

    def find(self, group: str, run_key: str) -> RegisteredVersion | None:
        """This run's version from its registration record: one read and one describe, however
        many versions the group has."""
        try:
            record = json.loads(self.store.read_bytes(self._record_uri(run_key)))
        except ObjectStoreError:
            return None
        if record.get("group") != group:
            return None  # registered in another group (the setting changed): this group has none of this run
        described = self.client.describe_model_package(ModelPackageName=record["arn"])
        if described.get("CustomerMetadataProperties", {}).get(RUN_KEY_TAG) != run_key:
            return None
        return RegisteredVersion(int(described["ModelPackageVersion"]), described["ModelPackageArn"],
                                 described.get("ModelApprovalStatus", PENDING), created=False)

    def register(self, request: dict[str, Any]) -> RegisteredVersion:
        group = request["ModelPackageGroupName"]
        run_key = request["CustomerMetadataProperties"][RUN_KEY_TAG]
        self.ensure_group(group)
        existing = self.find(group, run_key)
        if existing:
            return existing
        arn = self.client.create_model_package(**request)["ModelPackageArn"]  # ClientToken: once per run
        described = self.client.describe_model_package(ModelPackageName=arn)
        version = int(described["ModelPackageVersion"])
        self.store.write_bytes(self._record_uri(run_key), json.dumps(
            {"group": group, "arn": arn, "version": version}, sort_keys=True).encode())
        return RegisteredVersion(version, arn, described.get("ModelApprovalStatus", PENDING), created=True)

    def _latest(self, group: str, **status: str) -> ModelVersionRef | None:
        """One call whatever the number of versions: newest first, one result."""
        found = self.client.list_model_packages(ModelPackageGroupName=group, SortBy="CreationTime",
                                                SortOrder="Descending", MaxResults=1, **status)
        if not found["ModelPackageSummaryList"]:
            return None
        arn = found["ModelPackageSummaryList"][0]["ModelPackageArn"]
        described = self.client.describe_model_package(ModelPackageName=arn)
        metadata = described.get("CustomerMetadataProperties") or {}
        baselines = described.get("DriftCheckBaselines", {}).get("ModelDataQuality", {})
        return ModelVersionRef(
            version=int(described["ModelPackageVersion"]), identifier=arn,
            approval_status=described.get("ModelApprovalStatus", PENDING),
            model_uri=described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"],
            statistics_uri=baselines.get("Statistics", {}).get("S3Uri"),
            metrics=_metrics_of(metadata), run_key=metadata.get(RUN_KEY_TAG),
            engine=engine_of_version(metadata).value)

    def champion(self, group: str) -> ModelVersionRef | None:
        return self._latest(group, ModelApprovalStatus=APPROVED)

    def pending(self, group: str) -> list[ModelVersionRef]:
        found = self.client.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus=PENDING,
                                                SortBy="CreationTime", SortOrder="Descending", MaxResults=MAX_PENDING)
        refs = []
        for summary in found["ModelPackageSummaryList"]:
            described = self.client.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            metadata = described.get("CustomerMetadataProperties") or {}
            refs.append(ModelVersionRef(
                version=int(described["ModelPackageVersion"]), identifier=described["ModelPackageArn"],
                approval_status=described.get("ModelApprovalStatus", PENDING),
                model_uri=described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"],
                metrics=_metrics_of(metadata), run_key=metadata.get(RUN_KEY_TAG),
            engine=engine_of_version(metadata).value))
        return refs

    def set_approval(self, group: str, version: int, status: str, description: str | None = None,
                     identifier: str | None = None) -> int | None:
        """Write the decision on the package (``identifier``, its ARN): ``ModelApprovalStatus`` and
        ``ApprovalDescription``; returns the champion's version, the latest Approved package."""
        if status not in APPROVAL_STATUSES:
            raise ValueError(f"approval status must be one of {', '.join(APPROVAL_STATUSES)}, got {status!r}")
        if not identifier:
            raise ValueError(f"the sagemaker backend needs version {version}'s model package ARN to decide on it")
        described = self.client.describe_model_package(ModelPackageName=identifier)
        if described.get("ModelPackageGroupName") != group or int(described["ModelPackageVersion"]) != version:
            raise ValueError(f"{identifier} is not version {version} of {group}")
        update: dict[str, Any] = {"ModelPackageArn": identifier, "ModelApprovalStatus": status}
        if description:
            update["ApprovalDescription"] = description
        if described.get("CustomerMetadataProperties"):  # an update without them erases them (moto does)
            update["CustomerMetadataProperties"] = described["CustomerMetadataProperties"]
        self.client.update_model_package(**update)
        champion = self.champion(group)
        return champion.version if champion else None

    def link_outcomes(self, identifier: str, page_uri: str) -> None:
        """In the package's CustomerMetadataProperties, passed whole: an update without them erases them."""
        described = self.client.describe_model_package(ModelPackageName=identifier)
        metadata = dict(described.get("CustomerMetadataProperties") or {})
        if metadata.get(OUTCOMES_TAG) == page_uri:
            return
        metadata[OUTCOMES_TAG] = page_uri
        self.client.update_model_package(ModelPackageArn=identifier, CustomerMetadataProperties=metadata)

    def newest(self, group: str) -> ModelVersionRef | None:
        return self._latest(group)


class MlflowRegistry:
    """MLflow on SQLite; a file lock makes find-or-create atomic across parallel runs."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.uri = f"sqlite:///{self.root / 'mlflow.db'}"

    def _client(self) -> Any:
        import mlflow
        from mlflow import MlflowClient

        self.root.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _find(self, client: Any, group: str, run_key: str) -> RegisteredVersion | None:
        found = client.search_model_versions(f"name = '{group}' and tags.{RUN_KEY_TAG} = '{run_key}'")
        if not found:
            return None
        version = min(found, key=lambda item: int(item.version))
        return RegisteredVersion(int(version.version), f"models:/{group}/{version.version}",
                                 version.tags.get(APPROVAL_TAG, PENDING), created=False)

    def register(self, request: dict[str, Any]) -> RegisteredVersion:
        """Register from the same ``CreateModelPackage`` request the SageMaker backend sends."""
        from mlflow.exceptions import MlflowException

        group = request["ModelPackageGroupName"]
        metadata = request["CustomerMetadataProperties"]
        run_key = metadata[RUN_KEY_TAG]
        with file_lock(self.root / "mlflow.lock"):
            client = self._client()
            existing = self._find(client, group, run_key)
            if existing:
                return existing
            try:
                client.get_registered_model(group)
            except MlflowException:
                client.create_registered_model(group, description="Customer churn models from the nightly pipeline")
            experiment = client.get_experiment_by_name(EXPERIMENT)
            experiment_id = experiment.experiment_id if experiment else client.create_experiment(
                EXPERIMENT, artifact_location=(self.root / "mlflow-artifacts").as_uri())
            run = client.create_run(experiment_id, run_name=run_key, tags={RUN_KEY_TAG: run_key})
            metrics = set(comparable_metric_names())
            for name, value in metadata.items():
                if name in metrics:
                    client.log_metric(run.info.run_id, name, float(value))
                else:
                    client.log_param(run.info.run_id, name, value)
            for artifact_path, uri in self._artifacts(request):
                client.log_artifact(run.info.run_id, str(uri), artifact_path=artifact_path)
            client.set_terminated(run.info.run_id)
            container = request["InferenceSpecification"]["Containers"][0]
            tags = {**metadata, APPROVAL_TAG: request["ModelApprovalStatus"],
                    "evaluation_uri": request["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"],
                    "image_uri": container["Image"]}
            statistics = request.get("DriftCheckBaselines", {}).get("ModelDataQuality", {}).get("Statistics", {})
            if statistics:
                tags[STATISTICS_TAG] = statistics["S3Uri"]
            version = client.create_model_version(
                group, source=container["ModelDataUrl"], run_id=run.info.run_id, tags=tags,
                description=request["ModelPackageDescription"])
            return RegisteredVersion(int(version.version), f"models:/{group}/{version.version}",
                                     request["ModelApprovalStatus"], created=True)

    def _artifacts(self, request: dict[str, Any]) -> list[tuple[str, Path]]:
        """The run's profile and report as files of the local store, to keep with the MLflow run."""
        from churn_pipeline.services.objectstore import LocalObjectStore

        store = LocalObjectStore(self.root)
        quality = request.get("DriftCheckBaselines", {}).get("ModelDataQuality", {})
        uris = [("profile", quality.get(name, {}).get("S3Uri")) for name in ("Statistics", "Constraints")]
        uris.append(("report", request["CustomerMetadataProperties"].get("report_uri")))
        found = []
        for artifact_path, uri in uris:
            if uri and store.path_for(uri).is_file():
                found.append((artifact_path, store.path_for(uri)))
        return found

    def versions(self, group: str) -> list[dict[str, Any]]:
        client = self._client()
        found = client.search_model_versions(f"name = '{group}'")
        aliases: dict[int, list[str]] = {}
        if found:  # searching versions leaves their aliases out: they are the registered model's
            for alias, version in client.get_registered_model(group).aliases.items():
                aliases.setdefault(int(version), []).append(alias)
        return sorted(({"version": int(item.version), "tags": dict(item.tags), "source": item.source,
                        "run_id": item.run_id, "aliases": aliases.get(int(item.version), [])} for item in found),
                      key=lambda item: item["version"])

    def _reference(self, group: str, item: Any) -> ModelVersionRef:
        tags = dict(item.tags)
        return ModelVersionRef(version=int(item.version), identifier=f"models:/{group}/{item.version}",
                               approval_status=tags.get(APPROVAL_TAG, PENDING), model_uri=item.source,
                               statistics_uri=tags.get(STATISTICS_TAG), metrics=_metrics_of(tags),
                               run_key=tags.get(RUN_KEY_TAG), engine=engine_of_version(tags).value)

    def package_container(self, identifier: str) -> dict[str, Any]:
        """What a Model made from this version serves (``models:/<group>/<version>``): its image, its
        model data and the serving environment, as SageMaker takes them from a model package."""
        from churn_pipeline.requests.transform import INFERENCE_ENVIRONMENT

        _, _, path = identifier.partition("models:/")
        group, _, version = path.rpartition("/")
        if not group or not version.isdigit():
            raise ValueError(f"not an MLflow model version URI (models:/<name>/<version>): {identifier!r}")
        item = self._client().get_model_version(group, version)
        return {"Image": item.tags.get("image_uri", "local"), "ModelDataUrl": item.source,
                "Environment": dict(INFERENCE_ENVIRONMENT)}

    def champion(self, group: str) -> ModelVersionRef | None:
        from mlflow.exceptions import MlflowException

        if not (self.root / "mlflow.db").is_file():
            return None
        client = self._client()
        try:
            aliases = client.get_registered_model(group).aliases
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":  # nothing registered yet
                return None
            raise
        if CHAMPION_ALIAS not in aliases:
            return None
        return self._reference(group, client.get_model_version(group, str(aliases[CHAMPION_ALIAS])))

    def pending(self, group: str) -> list[ModelVersionRef]:
        if not (self.root / "mlflow.db").is_file():
            return []
        found = [item for item in self._client().search_model_versions(f"name = '{group}'")
                 if item.tags.get(APPROVAL_TAG, PENDING) == PENDING]
        newest_first = sorted(found, key=lambda item: int(item.version), reverse=True)[:MAX_PENDING]
        return [self._reference(group, item) for item in newest_first]

    def newest(self, group: str) -> ModelVersionRef | None:
        if not (self.root / "mlflow.db").is_file():
            return None
        found = self._client().search_model_versions(f"name = '{group}'")
        return self._reference(group, max(found, key=lambda item: int(item.version))) if found else None

    def link_outcomes(self, identifier: str, page_uri: str) -> None:
        """A version tag, which ``mlflow ui`` shows beside the version's metrics."""
        _, _, path = identifier.partition("models:/")
        group, _, version = path.rpartition("/")
        if not group or not version.isdigit():
            raise ValueError(f"not an MLflow model version URI (models:/<name>/<version>): {identifier!r}")
        with file_lock(self.root / "mlflow.lock"):
            self._client().set_model_version_tag(group, version, OUTCOMES_TAG, page_uri)

    def set_approval(self, group: str, version: int, status: str, description: str | None = None,
                     identifier: str | None = None) -> int | None:
        """Set a version's status (and, given, its ``approval_description`` tag) and move the ``champion``
        alias to the newest approved version (the same rule SageMaker's latest Approved package follows);
        returns the champion's version. ``identifier`` is SageMaker's; the version number names it here."""
        if status not in APPROVAL_STATUSES:
            raise ValueError(f"approval status must be one of {', '.join(APPROVAL_STATUSES)}, got {status!r}")
        with file_lock(self.root / "mlflow.lock"):
            client = self._client()
            client.set_model_version_tag(group, str(version), APPROVAL_TAG, status)
            if description:
                client.set_model_version_tag(group, str(version), APPROVAL_DESCRIPTION_TAG, description)
            approved = [int(item.version) for item in client.search_model_versions(f"name = '{group}'")
                        if item.tags.get(APPROVAL_TAG) == APPROVED]
            if approved:
                client.set_registered_model_alias(group, CHAMPION_ALIAS, str(max(approved)))
                return max(approved)
            client.delete_registered_model_alias(group, CHAMPION_ALIAS)  # a no-op when there is none
            return None
