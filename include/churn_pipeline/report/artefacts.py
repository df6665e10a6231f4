"""The data-quality counts and the links to the run's artefacts and jobs, as plain values (no HTML)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from churn_pipeline.report.values import count, mapping, number, share

# A link that only opens when clicked; anything else (javascript:, data:) is shown as text.
LINK_SCHEMES = ("s3://", "https://", "http://", "file://")


@dataclass(frozen=True)
class Fragment:
    """A piece of a table cell: ``code`` (a name from the data, shown as code) then ``text``."""

    text: str = ""
    code: str | None = None


@dataclass(frozen=True)
class QualityRow:
    label: str
    parts: tuple[Fragment, ...]
    separator: str


@dataclass(frozen=True)
class Link:
    label: str
    href: str | None  # None: not a link a reader may click, shown as text
    shown: str | None  # the target written out, where it is worth reading or copying


# --- data quality -----------------------------------------------------------------------------------

def quality_view(quality: Mapping[str, Any] | None) -> tuple[QualityRow, ...] | None:
    if quality is None:
        return None
    read = quality.get("rows_read")

    def text_row(label: str, *texts: str) -> QualityRow:
        return QualityRow(label, tuple(Fragment(text) for text in texts), " · ")

    def code_row(label: str, names: Sequence[Any]) -> QualityRow:
        return QualityRow(label, tuple(Fragment(code=str(name)) for name in names), ", ")

    rows = [text_row("rows read", count(read)),
            text_row("rows without a target (dropped)", count(quality.get("rows_without_target"))),
            text_row("duplicate rows (dropped)", count(quality.get("duplicate_rows"))),
            text_row("duplicate customer ids (dropped)", count(quality.get("duplicate_ids"))),
            text_row("rows used", count(quality.get("rows_used")) + share(quality.get("rows_used"), read))]
    classes = mapping(quality.get("class_counts"))
    class_total = sum(number(value) or 0.0 for value in classes.values())
    if classes:
        rows.append(text_row("classes", *(f"{label} {count(found)}{share(found, class_total)}"
                                          for label, found in classes.items())))
    splits = mapping(quality.get("splits"))
    if splits:
        rows.append(text_row("splits", *(
            f"{name} {count(mapping(split).get('rows'))} ({count(mapping(split).get('positive'))} churned)"
            for name, split in splits.items())))
    missing = mapping(quality.get("missing_values"))
    gaps = sorted(((str(name), found) for name, found in missing.items() if (number(found) or 0) > 0),
                  key=lambda item: (-(number(item[1]) or 0.0), item[0]))
    if missing:
        gap_parts = tuple(Fragment(count(found), code=name) for name, found in gaps)
        rows.append(QualityRow("missing values", gap_parts, " · ") if gaps else text_row("missing values", "none"))
    features = mapping(quality.get("features"))
    if isinstance(features.get("input"), list):
        encoded = f", {count(features.get('encoded'))} after encoding" if number(features.get("encoded")) else ""
        rows.append(text_row("features", f"{len(features['input'])} input columns{encoded}"))
    files = quality.get("files")
    if isinstance(files, list) and files:
        rows.append(code_row("files", files))
    ignored = quality.get("ignored_columns")
    if isinstance(ignored, list) and ignored:
        rows.append(code_row("columns ignored (not in the schema)", ignored))
    return tuple(rows)


# --- links ------------------------------------------------------------------------------------------

def safe_href(href: str) -> str | None:
    """The link target if it is one a reader may click, else None. Local paths become file: URIs."""
    target = href.strip()
    # "//host/x" is not a path but a link to another host (a UNC share, even, on Windows)
    if target.startswith("/") and not target.startswith("//"):
        return PurePosixPath(target).as_uri()
    return target if target.lower().startswith(LINK_SCHEMES) else None


def links_view(links: Sequence[Mapping[str, str]]) -> tuple[Link, ...]:
    shown = []
    for link in links:
        if not isinstance(link, Mapping) or not link.get("href"):
            continue
        href = str(link["href"])
        target = safe_href(href)
        # an s3:// URI or a path is worth reading and copying; a console URL is not
        written = None if target is not None and target.startswith("https://") else href
        shown.append(Link(label=str(link.get("label") or href), href=target, shown=written))
    return tuple(shown)
