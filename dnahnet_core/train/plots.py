"""Training curves of one or several runs on shared axes (``dnahnet plot-metrics``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from dnahnet_core.data.markov import highest_markov
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.atomic import atomic_path, check_output_file
from dnahnet_core.io.figures import figure_format
from dnahnet_core.model.config import CONFIG
from dnahnet_core.train.metrics import METRICS, read_metrics

X_AXES = {"step": "optimizer step", "tokens": "nucleotides trained on"}


def _series(records: list[dict], key: str, x: str) -> tuple[list, list]:
    points = [(r[x], r[key]) for r in records if key in r and x in r]
    return [p[0] for p in points], [p[1] for p in points]


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _target_ratios(run_dir: str | Path) -> list[float]:
    """The model's target downsampling ratio per stage, from the run's config.json."""
    path = Path(run_dir) / CONFIG
    try:
        return [float(r) for r in json.loads(path.read_text()).get("target_ratios", [])]
    except (OSError, ValueError, TypeError, AttributeError):
        return []


def plot_runs(run_dirs: list[str | Path], output: str | Path, x: str = "step",
              labels: list[str] | None = None) -> Path:
    """Bits per nucleotide (train solid, validation dashed, the validation fragments' Markov
    baseline dotted, uniform guessing grey) and L/L' per stage, one colour per run; written
    atomically to ``output`` (format from its suffix)."""
    if x not in X_AXES:
        raise DnahnetError(f"--x {x}: expected one of {', '.join(X_AXES)}")
    if not run_dirs:
        raise DnahnetError("plot-metrics: give at least one run directory")
    image_format = figure_format(output)
    check_output_file(output)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or [Path(d).name or str(d) for d in run_dirs]
    fig, (ax_loss, ax_ratio) = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    any_stage = False
    targets: set[float] = set()
    for i, (run_dir, label) in enumerate(zip(run_dirs, labels, strict=True)):
        records = read_metrics(run_dir)
        colour = colours[i % len(colours)]
        train = [r for r in records if r.get("kind", "train") == "train"]
        val = [r for r in records if r.get("kind") == "val"]
        if not any(_finite(r.get("bpb")) and _finite(r.get(x)) for r in train + val):
            raise DnahnetError(f"{Path(run_dir) / METRICS}: no training or validation record "
                               f"with a finite bpb and {x} to plot")
        ax_loss.plot(*_series(train, "bpb", x), color=colour, label=f"{label} train")
        if val:
            ax_loss.plot(*_series(val, "bpb", x), color=colour, linestyle="--", marker="o",
                         markersize=3, label=f"{label} val")
        baseline = next((r for r in records if r.get("kind") == "baseline"), None)
        if baseline is not None:  # the chain the validation curve has to beat
            key, order = highest_markov(baseline)
            ax_loss.axhline(baseline[key], color=colour, linestyle=":", linewidth=1,
                            label=f"{label} val, order-{order} Markov")
        targets.update(_target_ratios(run_dir))
        stage = 0
        styles = ["-", "--", ":", "-."]
        while any(f"compression_{stage}" in r for r in train):
            any_stage = True
            ax_ratio.plot(*_series(train, f"compression_{stage}", x), color=colour,
                          linestyle=styles[stage % len(styles)], label=f"{label} stage {stage + 1}")
            stage += 1
    ax_loss.axhline(2.0, color="grey", linestyle=":", linewidth=1, label="uniform (2 bits)")
    for target in sorted(targets):
        ax_ratio.axhline(target, color="grey", linestyle=":", linewidth=1)
        ax_ratio.annotate(f"target {target:g}", (0.01, target), xycoords=("axes fraction", "data"),
                          fontsize=7, color="grey", va="bottom")
    ax_loss.set_ylabel("bits per nucleotide")
    ax_loss.set_title("loss")
    ax_ratio.set_ylabel("L / L' (actual compression)")
    if any_stage:
        ax_ratio.set_yscale("log")  # early routing can compress 100x before settling
    ax_ratio.set_title("compression ratio per stage")
    if not any_stage:
        ax_ratio.text(0.5, 0.5, "no chunking stages\n(baseline models)", ha="center",
                      va="center", transform=ax_ratio.transAxes)
    for ax in (ax_loss, ax_ratio):
        ax.set_xlabel(X_AXES[x])
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    output = Path(output)
    with atomic_path(output) as tmp:
        fig.savefig(tmp, dpi=120, format=image_format)
    plt.close(fig)
    return output
