"""Figures written by the tasks: the ROC curves of an essentiality evaluation (the model
and its trivial baselines).

The image format follows the file suffix (png, pdf, svg, ...); writes are atomic.
"""

from __future__ import annotations

import os
from pathlib import Path

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.atomic import atomic_path


def figure_format(path: str | os.PathLike) -> str:
    """The image format named by the file suffix; an unknown one is a user error."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in {"png", "pdf", "svg", "jpg", "jpeg", "eps", "tif", "tiff"}:
        raise DnahnetError(
            f"{path}: unknown image format {Path(path).suffix or '(no suffix)'!r}; "
            "use a .png, .pdf or .svg file name"
        )
    return suffix


def plot_roc(report: dict, path: str | os.PathLike, *, title: str = "") -> None:
    """The ROC curves of an essentiality evaluation report (model and baselines), written
    atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "_roc" not in report:
        raise DnahnetError(f"{path}: no ROC curve: the matched genes need both classes")
    fpr, tpr = report["_roc"]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, lw=1.6, label=f"model: AUROC {report['auroc']:.3f}")
    for name, (x, y) in report.get("_baseline_roc", {}).items():  # trivial predictors
        auroc = report["baselines"][name]["auroc"]
        ax.plot(x, y, lw=0.9, alpha=0.7, label=f"{name.replace('_', ' ')}: {auroc:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    counts = f"{report['n_essential']} E / {report['n_nonessential']} NE"
    ax.set_title(title or f"essentiality ({counts})")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=figure_format(path))
    plt.close(fig)
