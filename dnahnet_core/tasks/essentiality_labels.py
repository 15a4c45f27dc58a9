"""Essentiality predictions against known labels: matching ids to genes, AUROC/AUPRC.

    matched, unmatched, ambiguous = match_labels(labels, ranking)
    report = evaluate(labels, ranking, source="labels.tsv")   # a dict (io.labels writes it)
    report = evaluate_sets([LabelSet(labels, "labels.tsv", ranking)],
                           baselines=gene_values, bootstrap=1000, seed=0)
    print("\n".join(metrics_lines(report)))

Label ids match a gene by locus tag, then old locus tag, then gene name (unique matches
only), within the genes of the ranking each labels file goes with. Metrics use -score (a
lower score means more likely essential). Beside them, the same metrics of trivial
predictors (``tasks.baselines``: gene length, GC content, closeness to the origin, a
seeded random score) and ``essential_fraction``, the AUPRC of a random ranking. With
several genomes (``RankedGene.genome``) every AUROC is reported pooled over all genes and
per genome, and macro-averaged over the genomes (the mean of the per-genome AUROCs):
pooled numbers reward a predictor that only tells the genomes apart (a per-genome base
rate), macro numbers do not. Every AUROC has a bootstrap 95% interval (genes resampled
within each genome and class; ``classification_metrics.bootstrap_aurocs``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.annotations import Feature
from dnahnet_core.tasks import classification_metrics as cm
from dnahnet_core.tasks.baselines import ESSENTIALITY_BASELINES, random_scores

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


@dataclass(frozen=True)
class LabelSet:
    """One labels file and the ranked genes (of one or more genomes) its ids name."""

    labels: dict[str, bool]
    source: str
    results: Sequence[RankedGene]


def evaluate(
    labels: dict[str, bool],
    results: Sequence[RankedGene],
    *,
    source: str = "labels",
    baselines: Mapping[Feature, dict[str, float]] | None = None,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict:
    """``evaluate_sets`` for one labels file."""
    return evaluate_sets([LabelSet(labels, source, results)], baselines=baselines,
                         bootstrap=bootstrap, seed=seed)


def evaluate_sets(
    sets: Sequence[LabelSet],
    *,
    baselines: Mapping[Feature, dict[str, float]] | None = None,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict:
    """AUROC/AUPRC of -score against the labels, pooled, per genome and macro-averaged,
    beside the baselines (``baselines[gene]``: the deterministic predictors of each gene,
    ``baselines.gene_baselines``; the random one is drawn here with ``seed``), with counts,
    unmatched ids and bootstrap intervals (a dict; keys starting '_' hold ROC curves)."""
    matched, unmatched, ambiguous, n_labels = [], [], [], 0
    for label_set in sets:
        found, missing, unclear = match_labels(label_set.labels, label_set.results)
        if not found:
            raise _no_match(label_set.labels, [r.gene for r in label_set.results],
                            label_set.source)
        prefix = f"{label_set.source}: " if len(sets) > 1 else ""
        matched += found
        unmatched += [prefix + ident for ident in missing]
        ambiguous += [prefix + ident for ident in unclear]
        n_labels += len(label_set.labels)
    scored = [m for m in matched if m[2].score is not None]
    y = np.array([m[3] for m in scored], dtype=bool)
    genome = np.array([m[2].genome for m in scored], dtype=object)
    predictors = {"model": -np.array([m[2].score for m in scored], dtype=np.float64)}
    if baselines is not None:
        for name in ESSENTIALITY_BASELINES:
            if name != "random":
                predictors[name] = np.array([baselines[m[2].gene][name] for m in scored])
        predictors["random"] = random_scores(len(scored), seed)
    report: dict = {
        "n_labels": n_labels,
        "n_matched": len(matched),
        "n_scored": len(scored),
        "n_essential": int(y.sum()),
        "n_nonessential": int((~y).sum()),
        "n_genomes": len(set(genome.tolist())),
        "matched_by": {how: sum(1 for m in matched if m[1] == how)
                       for how in ("locus_tag", "old_locus_tag", "gene")},
        "auroc": None,
        "auroc_ci95": None,
        "macro_auroc": None,
        "macro_auroc_ci95": None,
        "auprc": None,
        "macro_auprc": None,
        "essential_fraction": float(y.mean()) if y.size else None,
        "score_direction": "lower score = more likely essential; metrics use -score",
        "baselines": {},
        "genomes": [],
        "bootstrap": {"replicates": bootstrap, "seed": seed,
                      "resampling": "genes with replacement within each genome and class"},
        "matched_not_scored": [m[0] for m in matched if m[2].score is None],
        "unmatched": unmatched,
        "ambiguous": ambiguous,
    }
    if not y.size:
        return report
    aurocs = cm.bootstrap_aurocs(predictors, y, genome, bootstrap=bootstrap, seed=seed)
    names = list(dict.fromkeys(genome.tolist()))
    metrics = {}
    for name, values in predictors.items():
        per_genome = {g: _auprc(values[genome == g], y[genome == g]) for g in names}
        defined = [v for v in per_genome.values() if v is not None]
        metrics[name] = {
            **{k: aurocs[name][k] for k in ("auroc", "auroc_ci95", "macro_auroc",
                                             "macro_auroc_ci95")},
            "auprc": _auprc(values, y),
            "macro_auprc": float(np.mean(defined)) if defined else None,
            "_per_genome": per_genome,
        }
    model = metrics.pop("model")
    report.update({k: v for k, v in model.items() if not k.startswith("_")})
    report["baselines"] = {
        name: {"description": ESSENTIALITY_BASELINES[name],
               **{k: v for k, v in m.items() if not k.startswith("_")}}
        for name, m in metrics.items()
    }
    for g in names:
        rows = genome == g
        report["genomes"].append({
            "genome": g,
            "n_scored": int(rows.sum()),
            "n_essential": int(y[rows].sum()),
            "n_nonessential": int((~y[rows]).sum()),
            "essential_fraction": float(y[rows].mean()),
            "auroc": aurocs["model"]["groups"][g]["auroc"],
            "auroc_ci95": aurocs["model"]["groups"][g]["auroc_ci95"],
            "auprc": model["_per_genome"][g],
            "baselines": {name: {"auroc": aurocs[name]["groups"][g]["auroc"],
                                 "auroc_ci95": aurocs[name]["groups"][g]["auroc_ci95"],
                                 "auprc": m["_per_genome"][g]}
                          for name, m in metrics.items()},
        })
    if y.any() and (~y).any():
        report["_roc"] = cm.roc_curve(predictors["model"], y)[:2]
        report["_baseline_roc"] = {name: cm.roc_curve(predictors[name], y)[:2]
                                   for name in report["baselines"]}
    return report


def _auprc(values: np.ndarray, y: np.ndarray) -> float | None:
    return cm.auprc(values, y) if y.any() and (~y).any() else None


def metrics_lines(report: dict) -> list[str]:
    """The metrics table a user reads: the model and each baseline, AUROC with its 95%
    interval (pooled, and macro over genomes when there are several) and AUPRC."""
    several = report["n_genomes"] > 1
    head = f"{'predictor':<22}{'AUROC [95% CI]':<24}"
    if several:
        head += f"{'macro AUROC [95% CI]':<24}"
    lines = [head + ("AUPRC (pooled)" if several else "AUPRC")]
    rows = [("model", report)] + list(report["baselines"].items())
    for name, m in rows:
        title = "model (-score)" if name == "model" else name.replace("_", " ")
        line = f"{title:<22}{_with_interval(m, 'auroc'):<24}"
        if several:
            line += f"{_with_interval(m, 'macro_auroc'):<24}"
        lines.append(line + _number(m["auprc"]))
    fraction = report["essential_fraction"]
    lines.append(f"AUPRC of a random ranking = the essential fraction: {_number(fraction)}; "
                 "AUROC of a random ranking: 0.5")
    if several:
        for g in report["genomes"]:
            lines.append(f"  {g['genome']}: {g['n_essential']} E / {g['n_nonessential']} NE, "
                         f"AUROC {_with_interval(g, 'auroc')}, AUPRC {_number(g['auprc'])} "
                         f"(essential fraction {_number(g['essential_fraction'])})")
    return lines


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _with_interval(metrics: dict, key: str) -> str:
    value, interval = metrics.get(key), metrics.get(f"{key}_ci95")
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")
