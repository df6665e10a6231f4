"""The run report: one self-contained HTML page that a person reads in a minute.

The evaluation job computes numbers (its container has no matplotlib); this package turns them, with
the gate decision, preprocessing's data-quality counts and the run's links, into the page stored at
``runs/<run key>/report/report.html``. In the order a reader needs them: the decision and every
reason for it; the metrics beside the majority-class baseline and the champion; ROC,
precision-recall and calibration curves, the confusion matrix and the top permutation importances;
the drift table; the data-quality counts; links to the run's artefacts and jobs.

The page fetches nothing when opened: plots are inline PNG ``data:`` URIs, the style sheet is
inline, there is no script, and a Content-Security-Policy forbids every fetch but ``data:`` images,
so a mail client or an S3 console preview shows it as rendered here and tells no third party.

Rendering is a pure function of ``ReportInputs``: ``view.py`` and ``artefacts.py`` decide what each
section says (every part but the decision may be missing or malformed: what exists is shown and what
is missing is said, in place), ``plots.py`` draws the figures, and ``templates/report.html.j2`` lays
it out, with Jinja2's autoescaping as the one place where text from the run becomes HTML. The
template is read from beside this file, so it travels wherever the package folder is copied.

    python -m churn_pipeline.report.html render --decision D.json --evaluation E.json [...] -o report.html
    python -m churn_pipeline.tooling.browser report.html report.png        (a screenshot, in Chromium)
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from churn_pipeline.domain.text import shown_lines
from churn_pipeline.report.inputs import ReportInputs
from churn_pipeline.report.plots import CHALLENGER_COLOUR, CHAMPION_COLOUR, plot_section
from churn_pipeline.report.values import mapping
from churn_pipeline.report.view import page_view

__all__ = ["CHALLENGER_COLOUR", "CHAMPION_COLOUR", "CONTENT_SECURITY_POLICY", "TEMPLATE", "ReportInputs", "main",
           "render_report"]

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
TEMPLATE = Path(__file__).with_name("templates") / "report.html.j2"


def _neutral(value: Any) -> Any:
    """Every text a ``{{ }}`` prints, from the run's files, with its control characters made visible;
    markup the template itself made (a macro's output, whose own values went through here) is kept."""
    return shown_lines(value) if isinstance(value, str) and not isinstance(value, markupsafe.Markup) else value


@functools.cache
def _template() -> jinja2.Template:
    """The page's template, compiled once per process."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE.parent), autoescape=True, undefined=jinja2.StrictUndefined,
        # autoescaping stops markup; this stops what escaping lets through, control and bidi characters
        # (a feature named with U+202E would read reversed), by showing each as its escape
        finalize=_neutral,
        # the template's block tags sit on lines of their own; these keep them out of the page
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, auto_reload=False)
    return environment.get_template(TEMPLATE.name)


def render_report(inputs: ReportInputs) -> bytes:
    """One self-contained HTML document (UTF-8): the same inputs give the same bytes."""
    page = page_view(inputs)
    plots = plot_section(mapping(inputs.evaluation), inputs.details)
    return _template().render(page=page, plots=plots, content_security_policy=CONTENT_SECURITY_POLICY).encode("utf-8")


# --- command line -----------------------------------------------------------------------------------

def _read_optional(path: Path | None) -> bytes | None:
    return None if path is None or not path.is_file() else path.read_bytes()


def _link(text: str) -> dict[str, str]:
    label, separator, href = text.partition("=")
    if not separator or not label or not href:
        raise argparse.ArgumentTypeError(f"expected LABEL=HREF, got {text!r}")
    return {"label": label, "href": href}


def _render(args: argparse.Namespace) -> str:
    if not args.decision.is_file():
        raise FileNotFoundError(f"no gate decision at {args.decision}")
    inputs = ReportInputs.from_json(
        run_key=args.run_key, run_id=args.run_id, dag_id=args.dag_id, backend=args.backend,
        decision=args.decision.read_bytes(), evaluation=_read_optional(args.evaluation),
        details=_read_optional(args.details), drift=_read_optional(args.drift), quality=_read_optional(args.quality),
        links=args.link)
    args.output.write_bytes(render_report(inputs))
    return f"{args.output}" + "".join(f"\n  note: {note}" for note in inputs.notes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m churn_pipeline.report.html", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="render a report from a run's JSON files")
    render.add_argument("--decision", type=Path, required=True, help="the gate decision (GateDecision) as JSON")
    render.add_argument("--evaluation", type=Path, required=True, help="evaluation.json (may be absent)")
    for name in ("details", "drift", "quality"):
        render.add_argument(f"--{name}", type=Path)
    render.add_argument("--run-key", required=True)
    render.add_argument("--run-id", default="")
    render.add_argument("--dag-id", default="customer_churn_pipeline")
    render.add_argument("--backend", default="local")
    render.add_argument("--link", type=_link, action="append", default=[], metavar="LABEL=HREF")
    render.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        print(_render(args))
    except OSError as error:  # a missing file
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
