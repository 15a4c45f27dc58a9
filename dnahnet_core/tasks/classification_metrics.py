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


def bootstrap_aurocs(
    predictors: dict[str, np.ndarray],
    labels,
    groups=None,
    *,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, dict]:
    """AUROC of each predictor (higher = positive) pooled over all items, within each of
    ``groups`` and macro-averaged over them (the mean of the per-group AUROCs of the
    groups that hold both classes), each with a percentile bootstrap 95% interval.

    A bootstrap replicate resamples the items with replacement within every (group,
    class) stratum, so group sizes and class counts stay fixed: per replicate, for each
    group in order of first appearance, positives then negatives, ``rng.integers(0, n,
    n)`` picks the stratum's items (``rng = np.random.default_rng(seed)``). Every
    predictor is scored on the same draws (paired). Returns per predictor ``auroc``,
    ``auroc_ci95``, ``macro_auroc``, ``macro_auroc_ci95`` and ``groups`` ({group: {auroc,
    auroc_ci95}}); None where a metric is undefined (a class missing) and for intervals
    without ``bootstrap``."""
    y = np.asarray(labels).astype(bool).ravel()
    groups = np.zeros(y.size, dtype=np.int64) if groups is None else np.asarray(groups)
    if groups.shape != y.shape:
        raise ValueError(f"{groups.size} groups but {y.size} labels")
    names = list(dict.fromkeys(groups.tolist()))
    members = [np.flatnonzero(groups == name) for name in names]
    both = [bool(y[m].any() and (~y[m]).any()) for m in members]
    strata = [m[y[m] == c] for m in members for c in (True, False)]
    strata = [s for s in strata if s.size]
    subsets = [(None, bool(y.any() and (~y).any()))] + list(zip(members, both, strict=True))
    scores = {}
    for name, score in predictors.items():
        score = np.asarray(score, dtype=np.float64).ravel()
        if score.shape != y.shape:
            raise ValueError(f"{name}: {score.size} scores but {y.size} labels")
        if np.isnan(score).any():
            raise ValueError(f"{name}: scores contain NaN")
        scores[name] = score
    samples = {name: np.full((bootstrap, len(subsets)), np.nan) for name in scores}
    rng = np.random.default_rng(seed)
    for start in range(0, bootstrap, _BLOCK):  # the same draws for every predictor
        weights = _resampling_weights(rng, strata, y.size, min(_BLOCK, bootstrap - start))
        for k, (m, ok) in enumerate(subsets):
            rows = slice(None) if m is None else m
            for name, score in scores.items():
                if ok:
                    samples[name][start : start + len(weights), k] = _weighted_auroc(
                        score[rows], y[rows], weights[:, rows])
    out = {}
    for name, score in scores.items():
        value = [auroc(score if m is None else score[m], y if m is None else y[m]) if ok
                 else None for m, ok in subsets]
        drawn = samples[name]
        macro = [v for v, (_, ok) in zip(value[1:], subsets[1:], strict=True) if ok]
        macro_samples = np.nanmean(drawn[:, 1:], axis=1) if macro and bootstrap else None
        intervals = [_interval(drawn[:, k]) if v is not None else None
                     for k, v in enumerate(value)]
        out[name] = {
            "auroc": value[0],
            "auroc_ci95": intervals[0],
            "macro_auroc": float(np.mean(macro)) if macro else None,
            "macro_auroc_ci95": _interval(macro_samples) if macro_samples is not None else None,
            "groups": {group: {"auroc": value[1 + k], "auroc_ci95": intervals[1 + k]}
                       for k, group in enumerate(names)},
        }
    return out


_BLOCK = 128  # bootstrap replicates held in memory at once


def _resampling_weights(rng, strata: list[np.ndarray], size: int, count: int) -> np.ndarray:
    """[count, size] how often each item is drawn in each of ``count`` replicates."""
    rows = [np.concatenate([s[rng.integers(0, s.size, s.size)] for s in strata])
            for _ in range(count)]
    return np.stack([np.bincount(r, minlength=size) for r in rows]).astype(np.float64)


def _weighted_auroc(score: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC with items counted ``weights`` times ([replicates, n]): P(s+ > s-) + 0.5
    P(s+ = s-) over the weighted pairs, exactly as ``auroc`` for integer weights."""
    order = np.argsort(score, kind="mergesort")
    ordered = score[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]  # groups of tied scores
    w = weights[:, order]
    positive = labels[order]
    pos = np.add.reduceat(w * positive, starts, axis=1)
    neg = np.add.reduceat(w * ~positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negatives with a lower score
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    return wins / (pos.sum(axis=1) * neg.sum(axis=1))


def _interval(samples: np.ndarray) -> list[float] | None:
    samples = samples[np.isfinite(samples)]
    if not samples.size:
        return None
    return [float(np.quantile(samples, 0.025)), float(np.quantile(samples, 0.975))]


def auroc_with_interval(
    positive, negative, *, bootstrap: int = 1000, seed: int = 0
) -> dict | None:
    """AUROC of scores (higher = positive) of two classes with a bootstrap 95% interval
    (each class resampled on its own); None without both classes."""
    positive, negative = np.asarray(positive, float).ravel(), np.asarray(negative, float).ravel()
    if not positive.size or not negative.size:
        return None
    labels = np.r_[np.ones(positive.size, bool), np.zeros(negative.size, bool)]
    result = bootstrap_aurocs({"score": np.r_[positive, negative]}, labels,
                              bootstrap=bootstrap, seed=seed)["score"]
    return {"auroc": result["auroc"], "ci95": result["auroc_ci95"],
            "n_positive": int(positive.size), "n_negative": int(negative.size)}
