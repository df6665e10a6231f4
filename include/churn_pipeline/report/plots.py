"""The report's figures: matplotlib drawings of the evaluation's curves and counts, as inline PNG data URIs.

Each plot is first a plain description (title, caption, a drawing function) built from the JSON, or
the sentence saying why it cannot be drawn; ``plot_section`` then draws them off-screen. matplotlib
is imported only there, so that importing the report (as the DAG's import chain may) stays cheap.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from churn_pipeline.report.values import count, mapping, number, numbers, objects

TOP_IMPORTANCES = 10
CHALLENGER_COLOUR = "#1d4ed8"
CHAMPION_COLOUR = "#ea580c"
REFERENCE_COLOUR = "#9ca3af"
FIGURE_INCHES = (5.0, 3.5)  # two figures side by side in the page's 1,044 px
FIGURE_MARGINS = {"left": 0.12, "right": 0.97, "bottom": 0.13, "top": 0.91}
FIGURE_DPI = 100  # images are shown at their natural size: crisp, and no resampling by the browser
# Text in figures is data (feature names), never mathtext: a "$" in a column name must not be parsed.
# (Typed loosely: matplotlib types rc_context's keys as a Literal of every rcParam name.)
FIGURE_STYLE: dict[Any, Any] = {
    "font.size": 9.0, "axes.titlesize": 10.0, "axes.titleweight": "bold", "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "axes.axisbelow": True, "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8, "legend.frameon": False, "text.parse_math": False,
}
NO_DETAILS = ("ROC, precision-recall and calibration curves and permutation importances: the evaluation wrote no "
              "details.json")


@dataclass(frozen=True)
class Figure:
    """A drawn plot, ready for an ``<img>``: ``source`` is a ``data:image/png;base64,`` URI."""

    title: str
    caption: str
    source: str
    width: int
    height: int


@dataclass(frozen=True)
class PlotSection:
    figures: tuple[Figure, ...]
    not_drawn: tuple[str, ...]  # why each plot that is not there could not be drawn


def plot_section(evaluation: Mapping[str, Any], details: Mapping[str, Any] | None) -> PlotSection:
    if details is None:
        candidates: list[_Plot | str] = [NO_DETAILS, _confusion_plot(evaluation)]
    else:
        candidates = [_roc_plot(details), _precision_recall_plot(details, evaluation), _calibration_plot(details),
                      _gains_plot(details), _confusion_plot(evaluation), _importance_plot(details)]
    plots = [item for item in candidates if isinstance(item, _Plot)]
    figures = tuple(
        Figure(plot.title, plot.caption, "data:image/png;base64," + base64.b64encode(png).decode("ascii"), width,
               height)
        for plot, (png, width, height) in zip(plots, _draw(plots), strict=True))
    return PlotSection(figures, tuple(item for item in candidates if isinstance(item, str)))


def _draw(plots: Sequence[_Plot]) -> list[tuple[bytes, int, int]]:
    """PNG bytes and pixel size of each plot, drawn off-screen with Agg (no display, no pyplot state)."""
    if not plots:
        return []
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MatplotlibFigure

    images = []
    with matplotlib.rc_context(FIGURE_STYLE):
        for plot in plots:
            figure = MatplotlibFigure(figsize=FIGURE_INCHES, dpi=FIGURE_DPI)
            # fixed margins: a layout engine would lay every figure out twice for the same result
            figure.subplots_adjust(**FIGURE_MARGINS)
            canvas = FigureCanvasAgg(figure)
            axes = figure.add_subplot()
            axes.set_title(plot.title, loc="left")
            plot.draw(axes)
            buffer = io.BytesIO()
            # no "Software" text chunk: the bytes depend on the numbers, not on the matplotlib build
            figure.savefig(buffer, format="png", metadata={"Software": None})
            width, height = canvas.get_width_height()
            images.append((buffer.getvalue(), width, height))
    return images


@dataclass(frozen=True)
class _Plot:
    """One figure to draw: what it shows, and the drawing on a matplotlib Axes."""

    title: str
    caption: str
    draw: Callable[[Any], None]


def _curve(block: Any, x_name: str, y_name: str) -> tuple[list[float], list[float]] | None:
    """Two equally long lists of finite numbers under the block's keys, or None."""
    x, y = numbers(mapping(block).get(x_name)), numbers(mapping(block).get(y_name))
    if x is None or y is None or len(x) != len(y) or len(x) < 2:
        return None
    return x, y


def _labelled(name: str, block: Any, score_name: str, score_label: str) -> str:
    score = number(mapping(block).get(score_name))
    return name if score is None else f"{name} ({score_label} {score:.3f})"


def _compared_curves(details: Mapping[str, Any], section: str, x_name: str, y_name: str) -> tuple[
        tuple[list[float], list[float]] | None, tuple[list[float], list[float]] | None]:
    block = mapping(details.get(section))
    return _curve(block.get("challenger"), x_name, y_name), _curve(block.get("champion"), x_name, y_name)


def _roc_plot(details: Mapping[str, Any]) -> _Plot | str:
    challenger, champion = _compared_curves(details, "roc", "fpr", "tpr")
    if challenger is None:
        return "ROC curve: details.json has no usable challenger curve"
    blocks = mapping(details.get("roc"))

    def draw(axes: Any) -> None:
        axes.plot([0, 1], [0, 1], color=REFERENCE_COLOUR, linestyle=":", linewidth=1, label="chance")
        if champion is not None:
            axes.plot(*champion, color=CHAMPION_COLOUR, linestyle="--", linewidth=1.6,
                      label=_labelled("champion", blocks.get("champion"), "auc", "AUC"))
        axes.plot(*challenger, color=CHALLENGER_COLOUR, linewidth=2,
                  label=_labelled("this run", blocks.get("challenger"), "auc", "AUC"))
        axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate")
        axes.legend(loc="lower right")

    return _Plot("ROC curve", "Higher and further left is better: churners found for each false alarm.", draw)


def _precision_recall_plot(details: Mapping[str, Any], evaluation: Mapping[str, Any]) -> _Plot | str:
    challenger, champion = _compared_curves(details, "precision_recall", "recall", "precision")
    if challenger is None:
        return "precision-recall curve: details.json has no usable challenger curve"
    blocks = mapping(details.get("precision_recall"))
    rows = mapping(evaluation.get("rows"))
    positives, total = number(rows.get("positive")), number(rows.get("test"))
    churn_rate = positives / total if positives is not None and total else None

    def draw(axes: Any) -> None:
        if churn_rate is not None:
            axes.axhline(churn_rate, color=REFERENCE_COLOUR, linestyle=":", linewidth=1,
                         label=f"share of churners ({churn_rate:.2f})")
        if champion is not None:
            axes.plot(*champion, color=CHAMPION_COLOUR, linestyle="--", linewidth=1.6,
                      label=_labelled("champion", blocks.get("champion"), "average_precision", "AP"))
        axes.plot(*challenger, color=CHALLENGER_COLOUR, linewidth=2,
                  label=_labelled("this run", blocks.get("challenger"), "average_precision", "AP"))
        axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall (share of churners found)",
                 ylabel="precision (flagged who churn)")
        axes.legend(loc="lower left")

    return _Plot("Precision and recall", "Of the customers flagged, how many churn, for each share of churners found.",
                 draw)


def _calibration_plot(details: Mapping[str, Any]) -> _Plot | str:
    challenger, champion = _compared_curves(details, "calibration", "mean_predicted", "fraction_positive")
    if challenger is None:
        return "calibration curve: details.json has no usable challenger curve"

    def draw(axes: Any) -> None:
        axes.plot([0, 1], [0, 1], color=REFERENCE_COLOUR, linestyle=":", linewidth=1, label="perfectly calibrated")
        if champion is not None:
            axes.plot(*champion, color=CHAMPION_COLOUR, linestyle="--", linewidth=1.6, marker="s", markersize=3.5,
                      label="champion")
        axes.plot(*challenger, color=CHALLENGER_COLOUR, linewidth=2, marker="o", markersize=4, label="this run")
        axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="predicted churn probability (bin mean)",
                 ylabel="observed share who churned")
        axes.legend(loc="upper left")

    return _Plot("Calibration", "Predicted probability against what happened, by score bin: the diagonal is "
                 "a probability that can be taken at its word.", draw)


def _gains_plot(details: Mapping[str, Any]) -> _Plot | str:
    challenger, champion = _compared_curves(details, "gains", "share", "gain")
    if challenger is None:
        return "cumulative gains: details.json has no usable challenger curve"

    def draw(axes: Any) -> None:
        axes.plot([0, 1], [0, 1], color=REFERENCE_COLOUR, linestyle=":", linewidth=1, label="random order")
        if champion is not None:
            axes.plot([0, *champion[0]], [0, *champion[1]], color=CHAMPION_COLOUR, linestyle="--", linewidth=1.6,
                      label="champion")
        axes.plot([0, *challenger[0]], [0, *challenger[1]], color=CHALLENGER_COLOUR, linewidth=2, marker="o",
                  markersize=3, label="this run")
        axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="share of customers called, best-scored first",
                 ylabel="share of all churners reached")
        axes.legend(loc="lower right")

    return _Plot("Cumulative gains", "Calling the best-scored customers first: how many of all churners each share "
                 "reaches (lift is the curve over the diagonal).", draw)


def _confusion_plot(evaluation: Mapping[str, Any]) -> _Plot | str:
    matrix = mapping(evaluation.get("confusion_matrix"))
    names = ("true_negatives", "false_positives", "false_negatives", "true_positives")
    counts = [number(matrix.get(name)) for name in names]
    if any(count is None for count in counts):
        return "confusion matrix: evaluation.json has none"
    tn, fp, fn, tp = (count or 0.0 for count in counts)
    total = tn + fp + fn + tp or 1.0

    def draw(axes: Any) -> None:
        grid = [[tn, fp], [fn, tp]]
        axes.imshow(grid, cmap="Blues", vmin=0, vmax=max(tn, fp, fn, tp) or 1)
        for row in range(2):
            for column in range(2):
                value = grid[row][column]
                dark = value > 0.55 * max(tn, fp, fn, tp)
                axes.text(column, row, f"{value:,.0f}\n{100 * value / total:.1f} %", ha="center", va="center",
                          fontsize=11, color="white" if dark else "#111827")
        axes.set_xticks([0, 1], ["stays", "churns"])
        axes.set_yticks([0, 1], ["stayed", "churned"])
        axes.set(xlabel="predicted", ylabel="actual")
        axes.grid(False)
        for spine in axes.spines.values():
            spine.set_visible(False)

    return _Plot("Confusion matrix", "Test customers by what happened (rows) and what this run predicted (columns).",
                 draw)


def _importance_plot(details: Mapping[str, Any]) -> _Plot | str:
    block = mapping(details.get("permutation_importance"))
    features = objects(block.get("features"))
    ranked = [(str(item.get("name")), mean, number(item.get("std")) or 0.0)
              for item in features if (mean := number(item.get("mean"))) is not None]
    if not ranked:
        return "permutation importances: details.json has none"
    top = sorted(ranked, key=lambda item: -item[1])[:TOP_IMPORTANCES]
    metric = str(block.get("metric") or "the score")
    shown = f"the {len(top)} largest of {len(ranked)}" if len(top) < len(ranked) else f"all {len(top)} columns"
    caption = (f"Drop in {metric} when one input column is shuffled; {shown}"
               + (f", mean of {count(block['repeats'])} repeats" if number(block.get("repeats")) else "")
               + (f" on {count(block['rows'])} test rows" if number(block.get("rows")) else "")
               + "; whiskers: one standard deviation.")

    def draw(axes: Any) -> None:
        labels = [name if len(name) <= 28 else name[:27] + "…" for name, _, _ in reversed(top)]
        axes.barh(range(len(top)), [mean for _, mean, _ in reversed(top)],
                  xerr=[std for _, _, std in reversed(top)], color=CHALLENGER_COLOUR, ecolor="#374151",
                  error_kw={"linewidth": 1, "capsize": 2})
        axes.set_yticks(range(len(top)), labels)
        # room on the left for the longest name (a character at 9 pt is about 1.3 % of the width)
        axes.figure.subplots_adjust(left=min(0.45, 0.05 + 0.013 * max(len(label) for label in labels)))
        axes.axvline(0, color="#374151", linewidth=0.8)
        axes.set(xlabel=f"drop in {metric}")
        axes.grid(axis="y", visible=False)

    return _Plot(f"Top {len(top)} permutation importances", caption, draw)
