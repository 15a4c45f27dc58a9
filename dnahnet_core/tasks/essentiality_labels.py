"""Essentiality predictions against known labels: matching ids to genes, AUROC/AUPRC.

    matched, unmatched, ambiguous = match_labels(labels, ranking)
    report = evaluate(labels, ranking, source="labels.tsv")   # a dict (io.labels writes it)

Label ids match a gene by locus tag, then old locus tag, then gene name (unique matches
only). Metrics use -score (a lower score means more likely essential) and come with
the trivial baseline beside them (``essential_fraction`` is the AUPRC of a random
ranking); ``tasks.classification_metrics`` computes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.annotations import Feature
from dnahnet_core.tasks import classification_metrics as cm

if TYPE_CHECKING:
    from dnahnet_core.tasks.essentiality import RankedGene


class _Unscored(NamedTuple):
    gene: Feature


def match_labels(labels: dict[str, bool], results: Sequence[RankedGene]):
    """Label id -> result (anything with a ``gene``), by locus tag, then old locus tag, then
    gene name (unique only).

    Returns (matched: list of (id, how, result, label), unmatched ids, ambiguous ids).
    """
    indexes: dict[str, dict[str, list]] = {"locus_tag": {}, "old_locus_tag": {}, "gene": {}}
    for r in results:
        for how, value in (("locus_tag", r.gene.label), ("old_locus_tag", r.gene.old_locus_tag),
                           ("gene", r.gene.name)):
            for key in {value, value.lower()} if value else ():
                indexes[how].setdefault(key, []).append(r)
    matched, unmatched, ambiguous = [], [], []
    taken: set[int] = set()
    for ident, label in labels.items():
        found = None
        for how in ("locus_tag", "old_locus_tag", "gene"):
            hits = indexes[how].get(ident) or indexes[how].get(ident.lower())
            if hits:
                found = (how, hits)
                break
        if found is None:
            unmatched.append(ident)
        elif len({id(h) for h in found[1]}) > 1:
            ambiguous.append(ident)
        elif id(found[1][0]) in taken:
            ambiguous.append(ident)  # a second id for a gene already labelled
        else:
            taken.add(id(found[1][0]))
            matched.append((ident, found[0], found[1][0], label))
    return matched, unmatched, ambiguous


def _no_match(labels: dict[str, bool], genes: Sequence[Feature], source: str) -> DnahnetError:
    example = ", ".join(list(labels)[:3])
    names = ", ".join(g.label for g in genes[:3])
    return DnahnetError(
        f"{source}: none of the {len(labels)} ids matches a gene by locus_tag, "
        f"old_locus_tag or gene name (ids like {example}; genes like {names})"
    )


def require_label_matches(labels: dict[str, bool], genes: Sequence[Feature], source: str) -> None:
    """Fail before any scoring when no label id names one of ``genes``."""
    matched, _, _ = match_labels(labels, [_Unscored(g) for g in genes])
    if not matched:
        raise _no_match(labels, genes, source)


def evaluate(labels: dict[str, bool], results: Sequence[RankedGene], *, source: str = "labels"):
    """AUROC/AUPRC of -score against the labels, with counts and unmatched ids (a dict)."""
    matched, unmatched, ambiguous = match_labels(labels, results)
    if not matched:
        raise _no_match(labels, [r.gene for r in results], source)
    scored = [(m, m[2].score) for m in matched if m[2].score is not None]
    y = np.array([m[3] for m, _ in scored], dtype=bool)
    predictor = -np.array([s for _, s in scored], dtype=np.float64)
    report: dict = {
        "n_labels": len(labels),
        "n_matched": len(matched),
        "n_scored": len(scored),
        "n_essential": int(y.sum()),
        "n_nonessential": int((~y).sum()),
        "matched_by": {how: sum(1 for m in matched if m[1] == how)
                       for how in ("locus_tag", "old_locus_tag", "gene")},
        "auroc": None,
        "auprc": None,
        "essential_fraction": float(y.mean()) if y.size else None,
        "score_direction": "lower score = more likely essential; metrics use -score",
        "matched_not_scored": [m[0] for m in matched if m[2].score is None],
        "unmatched": unmatched,
        "ambiguous": ambiguous,
    }
    if y.any() and (~y).any():
        report["auroc"] = cm.auroc(predictor, y)
        report["auprc"] = cm.auprc(predictor, y)
        fpr, tpr, _ = cm.roc_curve(predictor, y)
        report["_roc"] = (fpr, tpr)
    return report
