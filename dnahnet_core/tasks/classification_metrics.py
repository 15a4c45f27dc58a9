"""Binary classification metrics from scratch (numpy): ROC curve, AUROC, AUPRC.

Convention: a higher score means "more likely positive". Ties are handled exactly:
tied scores form one threshold step (the ROC curve moves diagonally through them, so
AUROC equals the Mann-Whitney probability P(s+ > s-) + 0.5 P(s+ = s-)).

AUPRC is average precision: sum over thresholds of (recall_k - recall_{k-1}) *
precision_k, thresholds taken at each distinct score (no interpolation).
"""

from __future__ import annotations

import numpy as np


def _validated(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return s, y


def _steps(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct threshold, highest first."""
    s, y = _validated(scores, labels)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    if not s.size:
        return np.zeros(0, int), np.zeros(0, int), s
    last_of_group = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]
    tp = np.cumsum(y)[last_of_group]
    fp = np.cumsum(~y)[last_of_group]
    return tp, fp, s[last_of_group]


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds), starting at (0, 0, +inf)."""
    tp, fp, thresholds = _steps(scores, labels)
    n_pos, n_neg = (tp[-1], fp[-1]) if tp.size else (0, 0)
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC needs at least one positive and one negative label")
    fpr = np.r_[0.0, fp / n_neg]
    tpr = np.r_[0.0, tp / n_pos]
    return fpr, tpr, np.r_[np.inf, thresholds]


def auroc(scores, labels) -> float:
    """Area under the ROC curve (trapezoids, exact under ties)."""
    fpr, tpr, _ = roc_curve(scores, labels)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def precision_recall_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) at each distinct threshold, highest first."""
    tp, fp, thresholds = _steps(scores, labels)
    if not tp.size or tp[-1] == 0:
        raise ValueError("precision-recall needs at least one positive label")
    return tp / (tp + fp), tp / tp[-1], thresholds


def auprc(scores, labels) -> float:
    """Average precision: sum_k (R_k - R_{k-1}) P_k."""
    precision, recall, _ = precision_recall_curve(scores, labels)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
