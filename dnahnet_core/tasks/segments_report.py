"""Where learned chunk boundaries fall relative to genes (`dnahnet segments-report`).

Input: the BED written by ``dnahnet segments`` (a boundary of stage s is the start
of a chunk named ``stage{s}``) and an annotated genome. Every number is a boundary
*rate*: boundaries / positions, over the positions of a class. Position 0 of each
contig is a forced boundary (every chunking starts there) and is left out.

* Codon position (1, 2, 3) of every base of every CDS, counted from the CDS's first
  complete codon (GFF phase / GenBank codon_start), on the CDS's own strand, for
  plus-strand, minus-strand and all CDSs. A base inside two CDSs counts once per CDS.
* Region class of every base, the first that applies in this order: start codon,
  stop codon, CDS interior, rRNA/tRNA, upstream (<= 100 nt 5' of a start codon:
  a promoter proxy), other intergenic. Partial ends (no start / no stop codon in
  the annotation) give no start/stop/upstream bases. Pseudogenes are ignored.
* Start-codon metaplot: rate at offsets -200..+200 from the first base of each start
  codon (strand-aware; positive = into the gene).

The model reads the forward strand, so a boundary is a cut just before its base;
on the minus strand the same cut lies after that base in gene orientation, which
shifts minus-strand codon positions by one — hence the per-strand rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dnahnet_core.errors import DnahnetError

UPSTREAM = 100
METAPLOT_FLANK = 200
REGIONS = ("start codon", "stop codon", "CDS interior", "rRNA/tRNA", "upstream", "intergenic")
_START, _STOP, _CDS, _RNA, _UPSTREAM, _INTERGENIC = range(6)


@dataclass(frozen=True)
class Gene:
    """A feature reduced to what the report needs; positions 0-based, 5'->3'."""

    contig: str
    type: str  # "CDS", "rRNA" or "tRNA"
    strand: str
    positions: np.ndarray  # every base in transcript order (5' -> 3'), 0-based
    phase: int = 0
    has_start: bool = True
    has_stop: bool = True


def genes_from_features(features: Iterable, lengths: dict[str, int]) -> list[Gene]:
    """CDS/rRNA/tRNA ``annotations.Feature``s (1-based closed segments) as ``Gene``s."""
    genes = []
    for feat in features:
        if feat.type not in ("CDS", "rRNA", "tRNA") or feat.pseudo or feat.contig not in lengths:
            continue
        parts = []
        for start, end in feat.segments or ((feat.start, feat.end),):
            if feat.strand == "-":
                parts.append(np.arange(end - 1, start - 2, -1))
            else:
                parts.append(np.arange(start - 1, end))
        positions = np.concatenate(parts) % lengths[feat.contig]
        genes.append(
            Gene(feat.contig, feat.type, "-" if feat.strand == "-" else "+", positions,
                 feat.phase, not feat.partial_5, not feat.partial_3)
        )
    return genes


def boundaries_from_bed(records: Iterable, lengths: dict[str, int], where: str):
    """{stage: {contig: bool[length]}} from BED records named ``stage{s}``."""
    out: dict[int, dict[str, np.ndarray]] = {}
    for rec in records:
        line = f"{where}: line {rec.line}" if rec.line else where
        if not rec.name.startswith("stage") or not rec.name[5:].isdigit():
            raise DnahnetError(f"{line}: interval name {rec.name!r} is not stage1/stage2/... "
                               "(the BED of `dnahnet segments`)")
        if rec.contig not in lengths:
            raise DnahnetError(f"{line}: contig {rec.contig!r} is not in the genome")
        if rec.end > lengths[rec.contig]:
            raise DnahnetError(
                f"{line}: {rec.contig}:{rec.start}-{rec.end} lies past the contig end "
                f"({lengths[rec.contig]} nt); is this the right genome?"
            )
        stage = int(rec.name[5:])
        per_contig = out.setdefault(stage, {})
        if rec.contig not in per_contig:
            per_contig[rec.contig] = np.zeros(lengths[rec.contig], dtype=bool)
        per_contig[rec.contig][rec.start] = True
    if not out:
        raise DnahnetError(f"{where}: no chunks found")
    return out


def region_classes(genes: list[Gene], lengths: dict[str, int]) -> dict[str, np.ndarray]:
    """Per contig, the region class index (into REGIONS) of every base."""
    classes = {c: np.full(n, _INTERGENIC, dtype=np.int8) for c, n in lengths.items()}
    # paint from the lowest precedence to the highest
    for gene in genes:
        if gene.type == "CDS" and gene.has_start:
            classes[gene.contig][_upstream(gene, lengths[gene.contig])] = _UPSTREAM
    for gene in genes:
        if gene.type != "CDS":
            classes[gene.contig][gene.positions] = _RNA
    for gene in genes:
        if gene.type == "CDS":
            classes[gene.contig][gene.positions] = _CDS
    for gene in genes:
        if gene.type == "CDS" and gene.has_stop and gene.positions.size >= 3:
            classes[gene.contig][gene.positions[-3:]] = _STOP
    for gene in genes:
        if gene.type == "CDS" and gene.has_start and gene.positions.size >= 3:
            classes[gene.contig][gene.positions[:3]] = _START
    return classes


def _upstream(gene: Gene, length: int) -> np.ndarray:
    first = int(gene.positions[0])
    if gene.strand == "+":
        return np.arange(max(0, first - UPSTREAM), first)
    return np.arange(first + 1, min(length, first + 1 + UPSTREAM))


def _counted(length: int) -> np.ndarray:
    keep = np.ones(length, dtype=bool)
    keep[:1] = False  # position 0: forced boundary
    return keep


def _rate(boundaries: int, positions: int) -> float:
    return boundaries / positions if positions else float("nan")


def codon_table(boundaries, genes: list[Gene]) -> pd.DataFrame:
    rows = []
    for stage, per_contig in sorted(boundaries.items()):
        counts = {s: np.zeros((2, 3), dtype=np.int64) for s in "+-"}
        for gene in genes:
            if gene.type != "CDS":
                continue
            hits = per_contig.get(gene.contig)
            codon = (np.arange(gene.positions.size) - gene.phase) % 3
            valid = gene.positions != 0
            pos, codon = gene.positions[valid], codon[valid]
            counts[gene.strand][0] += np.bincount(codon, minlength=3)
            if hits is not None:
                counts[gene.strand][1] += np.bincount(codon, weights=hits[pos], minlength=3).astype(
                    np.int64
                )
        counts["all"] = counts["+"] + counts["-"]
        for strand in ("+", "-", "all"):
            for k in range(3):
                n, b = int(counts[strand][0, k]), int(counts[strand][1, k])
                rows.append((stage, strand, k + 1, n, b, _rate(b, n)))
    return pd.DataFrame(
        rows, columns=["stage", "strand", "codon_position", "positions", "boundaries", "rate"]
    )


def region_table(boundaries, classes: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = []
    for stage, per_contig in sorted(boundaries.items()):
        n = np.zeros(len(REGIONS), dtype=np.int64)
        b = np.zeros(len(REGIONS), dtype=np.int64)
        for contig, cls in classes.items():
            keep = _counted(cls.size)
            n += np.bincount(cls[keep], minlength=len(REGIONS))
            hits = per_contig.get(contig)
            if hits is not None:
                b += np.bincount(cls[keep & hits], minlength=len(REGIONS))
        overall = _rate(int(b.sum()), int(n.sum()))
        for k, region in enumerate(REGIONS):
            rate = _rate(int(b[k]), int(n[k]))
            enrichment = rate / overall if overall > 0 else float("nan")  # no boundary at all
            rows.append((stage, region, int(n[k]), int(b[k]), rate, enrichment))
        genome_enrichment = 1.0 if overall > 0 else float("nan")
        rows.append((stage, "genome", int(n.sum()), int(b.sum()), overall, genome_enrichment))
    return pd.DataFrame(
        rows, columns=["stage", "region", "positions", "boundaries", "rate", "enrichment"]
    )


def metaplot_table(boundaries, genes: list[Gene], lengths, flank: int = METAPLOT_FLANK):
    offsets = np.arange(-flank, flank + 1)
    rows = []
    for stage, per_contig in sorted(boundaries.items()):
        n = np.zeros(offsets.size, dtype=np.int64)
        b = np.zeros(offsets.size, dtype=np.int64)
        for gene in genes:
            if gene.type != "CDS" or not gene.has_start:
                continue
            first = int(gene.positions[0])
            pos = first + offsets if gene.strand == "+" else first - offsets
            valid = (pos >= 1) & (pos < lengths[gene.contig])
            n += valid
            hits = per_contig.get(gene.contig)
            if hits is not None:
                b[valid] += hits[pos[valid]]
        for k, offset in enumerate(offsets.tolist()):
            rows.append((stage, offset, int(n[k]), int(b[k]), _rate(int(b[k]), int(n[k]))))
    return pd.DataFrame(rows, columns=["stage", "offset", "positions", "boundaries", "rate"])


@dataclass
class Report:
    codon: pd.DataFrame
    regions: pd.DataFrame
    metaplot: pd.DataFrame


def build_report(bed_records, features, lengths: dict[str, int], where: str) -> Report:
    """All three tables from BED records, annotation features and contig lengths."""
    boundaries = boundaries_from_bed(bed_records, lengths, where)
    genes = genes_from_features(features, lengths)
    if not any(g.type == "CDS" for g in genes):
        raise DnahnetError("the annotation has no CDS on the contigs of the BED/genome")
    classes = region_classes(genes, lengths)
    return Report(
        codon_table(boundaries, genes),
        region_table(boundaries, classes),
        metaplot_table(boundaries, genes, lengths),
    )


def report_segments(
    chunks: str | os.PathLike,
    annotation: str | os.PathLike,
    genome: str | os.PathLike | None,
    output: str | os.PathLike,
    overwrite: bool = False,
) -> tuple[Report, list[str]]:
    """``dnahnet segments-report``: the report directory (TSVs, PNGs) and its file names.

    An existing non-empty ``output`` is refused unless ``overwrite`` (checked first)."""
    from dnahnet_core.io.annotations import load_annotated_genome
    from dnahnet_core.io.atomic import atomic_directory, check_output_directory
    from dnahnet_core.io.tracks import read_bed

    inputs = [p for p in (chunks, annotation, genome) if p is not None]
    check_output_directory(output, overwrite, inputs)
    if genome is not None:
        annotated = load_annotated_genome(genome, annotation, map_option=None)
    else:
        annotated = load_annotated_genome(annotation, map_option=None)
    lengths = {name: len(seq) for name, seq in annotated.contigs.items()}
    report = build_report(read_bed(chunks), annotated.features, lengths, str(chunks))
    with atomic_directory(output, overwrite, inputs) as tmp:
        names = write_report(report, tmp)
    return report, names


def key_table(report: Report) -> str:
    """The table printed on the terminal: rates per stage by region and codon position."""
    regions = report.regions.pivot(index="region", columns="stage", values="rate")
    regions = regions.reindex(list(REGIONS) + ["genome"])
    codon = report.codon[report.codon.strand == "all"].pivot(
        index="codon_position", columns="stage", values="rate"
    )
    codon.index = [f"codon position {k}" for k in codon.index]
    table = pd.concat([regions, codon])
    table.columns = [f"stage{s} rate" for s in table.columns]
    return table.to_string(float_format=lambda v: f"{v:.4f}")


def write_report(report: Report, directory) -> list[str]:
    """TSVs and PNGs into ``directory`` (which exists); returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report.codon.to_csv(directory / "codon_position.tsv", sep="\t", index=False)
    report.regions.to_csv(directory / "region_class.tsv", sep="\t", index=False)
    report.metaplot.to_csv(directory / "start_metaplot.tsv", sep="\t", index=False)
    stages = sorted(report.regions.stage.unique())
    width = 0.8 / len(stages)

    fig, axes = plt.subplots(1, len(stages), figsize=(4 * len(stages), 3.5), squeeze=False)
    for ax, stage in zip(axes[0], stages, strict=True):
        rows = report.codon[report.codon.stage == stage]
        for k, strand in enumerate(("+", "-", "all")):
            sub = rows[rows.strand == strand]
            ax.bar(sub.codon_position + (k - 1) * 0.27, sub.rate, width=0.27, label=strand)
        ax.set(title=f"stage {stage}", xlabel="codon position", ylabel="boundary rate")
        ax.set_xticks([1, 2, 3])
        ax.set_ylim(0, np.nanmax(rows.rate.to_numpy(dtype=float), initial=0) * 1.35 or 1)
        ax.legend(title="CDS strand", fontsize=8, ncols=3, loc="upper center")
    fig.tight_layout()
    fig.savefig(directory / "codon_position.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 3.5))
    names = list(REGIONS) + ["genome"]
    for k, stage in enumerate(stages):
        rows = report.regions[report.regions.stage == stage].set_index("region").reindex(names)
        ax.bar(np.arange(len(names)) + (k - (len(stages) - 1) / 2) * width, rows.rate,
               width=width, label=f"stage {stage}")
    ax.set_xticks(np.arange(len(names)), names, rotation=20)
    ax.set(ylabel="boundary rate", title="boundary rate by region class")
    ax.legend()
    fig.tight_layout()
    fig.savefig(directory / "region_class.png", dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(len(stages), 1, figsize=(8, 2.6 * len(stages)), squeeze=False)
    for ax, stage in zip(axes[:, 0], stages, strict=True):
        rows = report.metaplot[report.metaplot.stage == stage]
        ax.plot(rows.offset, rows.rate, lw=0.7, color="0.6", label="per base")
        smooth = rows.rate.rolling(9, center=True, min_periods=1).mean()
        ax.plot(rows.offset, smooth, lw=1.5, label="9-nt mean")
        ax.axvline(0, color="k", lw=0.5)
        ax.set(title=f"stage {stage}", ylabel="boundary rate")
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("offset from start codon (nt, gene orientation)")
    fig.tight_layout()
    fig.savefig(directory / "start_metaplot.png", dpi=120)
    plt.close(fig)
    return [
        "codon_position.tsv", "region_class.tsv", "start_metaplot.tsv",
        "codon_position.png", "region_class.png", "start_metaplot.png",
    ]
