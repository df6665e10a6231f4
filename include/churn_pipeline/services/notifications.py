"""Tell the team once: at most one message per run and reason, whatever retries happen, and tell
it even when the run's own prefix is broken.

A marker object records what was sent; it is written before sending and removed if sending fails,
so a retry sends again only when nothing went out. It lives beside the runs
(``<prefix>/notifications/<area>/<run key>/``), not inside the run's prefix, so that a run whose
prefix cannot be written (a file in its place, a denied S3 prefix) still tells the team why. When
even the marker cannot be written, the message is sent anyway and the log says so: the team may
then hear twice of one run (at least once), never not at all.

Every message is made fit to send (``fit_to_send``): its text neutralised
(``churn_pipeline.domain.text``), the message cut to its head with a word on where the rest is, the
subject printable ASCII of at most 100 characters, so that SNS's limits (256 KB, subjects of ASCII
without control characters) never refuse it. Should SNS refuse one anyway, a short message
without the details goes out instead. The channel is SNS (``sagemaker`` backend) or a JSON-lines
outbox at ``<local root>/notifications.jsonl`` (local).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from churn_pipeline.domain.s3_uris import ObjectStoreError
from churn_pipeline.domain.text import shown, shown_lines
from churn_pipeline.services.locks import file_lock
from churn_pipeline.services.objectstore import ObjectStore, atomic_write

SNS_MESSAGE_LIMIT = 256 * 1024  # bytes of UTF-8, SNS's own limit for Publish
SNS_SUBJECT_LIMIT = 100
# Well under SNS's limit: once neutralised, a character is at most 4 bytes of UTF-8 in the JSON body,
# so the message and the listed names together stay below 128 KB whatever the data held.
MESSAGE_CHARS = 16_000
LISTED_ITEMS = 20
ITEM_CHARS = 200
FIELD_CHARS = 1_000
# SNS's answers that mean "this message", not "try again later": a retry of the same message fails alike
REFUSALS = frozenset({"InvalidParameter", "InvalidParameterValue", "ValidationError"})


@dataclass(frozen=True)
class Notification:
    reason: str
    subject: str
    message: str
    run_id: str
    run_key: str
    accuracy: float | None = None
    threshold: float | None = None
    evaluation_uri: str | None = None
    failed_tasks: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # every reason the gate gave, when it decided
    report_uri: str | None = None  # where the run's report is, when it has one
    champion: str | None = None  # the champion compared with (identifier), when there was one
    drifted_features: tuple[str, ...] = ()
    review_url: str | None = None  # a registered version's review in Airflow's UI (review_requested)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failed_tasks": list(self.failed_tasks), "reasons": list(self.reasons),
                "drifted_features": list(self.drifted_features)}


def cut(text: str, limit: int, rest_is: str) -> str:
    """``text`` when it fits, else its head and how much was cut and where the whole of it is."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [... {len(text) - limit} more characters cut; the whole text is in {rest_is}]"


def ascii_subject(subject: str) -> str:
    """A subject SNS accepts: printable ASCII (anything else becomes ``?``), one line, at most 100
    characters, starting with a letter, digit or punctuation."""
    printable = "".join(c if " " <= c <= "~" else "?" for c in shown(subject)).strip() or "Churn pipeline"
    return printable[:SNS_SUBJECT_LIMIT].rstrip()


def fit_to_send(notification: Notification, rest_is: str = "the task log") -> Notification:
    """The notification with every text neutralised and cut to the sizes above; ``rest_is`` says
    where the whole of a cut text can be read."""

    def item(text: str) -> str:
        return cut(shown(text), ITEM_CHARS, rest_is)

    def field(text: str | None) -> str | None:
        return None if text is None else cut(shown(text), FIELD_CHARS, rest_is)

    def listed(items: tuple[str, ...]) -> tuple[str, ...]:
        kept = tuple(item(text) for text in items[:LISTED_ITEMS])
        return kept + ((f"... and {len(items) - LISTED_ITEMS} more (see {rest_is})",) if len(items) > LISTED_ITEMS
                       else ())

    return replace(
        notification, reason=item(notification.reason), subject=ascii_subject(notification.subject),
        message=cut(shown_lines(notification.message), MESSAGE_CHARS, rest_is),
        run_id=item(notification.run_id), run_key=item(notification.run_key),
        evaluation_uri=field(notification.evaluation_uri), report_uri=field(notification.report_uri),
        champion=field(notification.champion), failed_tasks=listed(notification.failed_tasks),
        reasons=listed(notification.reasons), drifted_features=listed(notification.drifted_features))


def without_details(notification: Notification, refusal: str) -> Notification:
    """The short message sent when the channel refused the full one: what happened, to which run."""
    return Notification(
        reason=notification.reason, subject=notification.subject, run_id=notification.run_id,
        run_key=notification.run_key, failed_tasks=notification.failed_tasks,
        message=(f"The full message about run {notification.run_id} ({notification.reason}) was refused by the "
                 f"notification channel ({cut(shown(refusal), ITEM_CHARS, 'the task log')}); the details are in "
                 "the log of the task that sent it and in the run's summary (cli summary)."))


class NotificationChannel(Protocol):
    def send(self, notification: Notification) -> str:
        """Deliver the message; returns where it went, for the log."""


class LocalOutbox:
    """Appends each notification as one JSON line; the file is rewritten atomically under a lock."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def send(self, notification: Notification) -> str:
        with file_lock(self.path.with_name(self.path.name + ".lock")):
            existing = self.path.read_bytes() if self.path.is_file() else b""
            line = json.dumps(notification.to_dict(), sort_keys=True).encode() + b"\n"
            atomic_write(self.path, existing + line)
        return f"appended to {self.path}"


class SnsChannel:
    def __init__(self, client: Any, topic_arn: str):
        self.client = client
        self.topic_arn = topic_arn

    def send(self, notification: Notification) -> str:
        """Publish; when SNS refuses the message itself, publish it again without its details."""
        try:
            return self._publish(notification)
        except self.client.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in REFUSALS:
                raise  # throttling, a network fault, a missing permission: the task's retry may pass
            refusal = f"{code}: {error.response.get('Error', {}).get('Message', '')}"
            where = self._publish(without_details(notification, refusal))
            return f"{where}, without details: SNS refused the full message ({shown(refusal)})"

    def _publish(self, notification: Notification) -> str:
        body = json.dumps(notification.to_dict(), indent=2, sort_keys=True, ensure_ascii=False)
        if len(body.encode()) > SNS_MESSAGE_LIMIT:  # fit_to_send keeps far below; a guard, not a path
            body = json.dumps(without_details(notification, "the message exceeds 256 KB").to_dict(), indent=2,
                              sort_keys=True, ensure_ascii=False)
        response = self.client.publish(
            TopicArn=self.topic_arn,
            Subject=ascii_subject(notification.subject),
            Message=body,
            MessageAttributes={"reason": {"DataType": "String", "StringValue": shown(notification.reason)}},
        )
        return f"published to {self.topic_arn} as message {response['MessageId']}"


def notify_once(notification: Notification, channel: NotificationChannel, store: ObjectStore, marker_uri: str,
                log: Callable[[str], None] = print) -> bool:
    """Send unless this run already sent this reason; True when a message went out now.

    The marker is claimed first; when it cannot be written (or read), the message goes out anyway and
    the log says the team may hear of this run again on a retry."""
    store_errors: tuple[type[BaseException], ...] = (OSError, ObjectStoreError, *_store_errors(store))
    fitted = fit_to_send(notification)
    if fitted.message != shown_lines(notification.message):  # the cut message says the whole is here
        log(f"the whole message ({notification.reason}):\n{shown_lines(notification.message)}")
    notification = fitted
    try:
        if store.exists(marker_uri):
            log(f"the team was already notified for run {notification.run_key} ({notification.reason}); "
                "not sending again")
            return False
        store.write_bytes(marker_uri, json.dumps(notification.to_dict(), sort_keys=True).encode())
        claimed = True
    except store_errors as error:
        claimed = False
        log(f"cannot record that the team is told ({marker_uri}: {shown(error)}); sending anyway, so a retry "
            "of this task may send this message again")
    try:
        where = channel.send(notification)
    except BaseException:
        if claimed:
            store.delete(marker_uri)
        raise
    log(f"notified the team ({notification.reason}): {where}")
    if not claimed:  # a store that failed for a moment may take the marker now, sparing a retry's repeat
        try:
            store.write_bytes(marker_uri, json.dumps(notification.to_dict(), sort_keys=True).encode())
        except store_errors as error:
            log(f"the marker {marker_uri} still cannot be written ({shown(error)})")
    return True


def _store_errors(store: ObjectStore) -> tuple[type[BaseException], ...]:
    """The S3 client's error class (an access denied on the marker's prefix), when the store has one."""
    client = getattr(store, "client", None)
    error = getattr(getattr(client, "exceptions", None), "ClientError", None)
    return (error,) if isinstance(error, type) and issubclass(error, BaseException) else ()
