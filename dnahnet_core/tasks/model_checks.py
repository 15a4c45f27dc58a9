"""Zero-shot checks of what a model knows about genes (``dnahnet check-model``).

On any annotated genome, three measurements, each with trivial baselines beside it:

1. **Codon periodicity of the learned boundaries.** A seeded sample of CDS-rich windows
   (``max_bases`` nt in non-overlapping windows of ``sample_window`` nt) runs through the
   model on both strands. Every CDS base is read on its gene's own strand (the forward pass
   for + genes, the reverse-complement pass for - genes) and has there a codon position
   1/2/3, counted from the gene's first complete codon. Per stage: the boundary rate at
   each codon position and the periodicity max/min of the three rates (``inf`` when the
   smallest rate is 0 and the largest is not; None without any boundary), with a 95%
   bootstrap interval over windows. The first position of every window (always a
   boundary, no left context) is not counted. Baselines: a model without codon signal puts
   boundaries at its overall CDS rate at every codon position: periodicity 1; and the same
   architecture untrained (built with ``seed``, ``untrained_baseline``) on the same windows:
   its routers already react to the base composition of codon positions (strongly skewed
   in AT-rich genomes), so only a periodicity above the untrained one is learned.
2. **SNV classes.** ``snvs_per_class`` SNVs of each class (synonymous, missense, nonsense),
   drawn (seeded) uniformly among all SNVs of that class at the internal codons (not the
   first or last) of the valid CDSs, at bases that only one CDS covers. Each is scored like
   ``score-variants``: LLR = log P(ALT window) - log P(REF window) over a ``snv_window``-nt
   window centred on it, fp32, the mean of both strands by default (``tasks.engine``).
   Reported: mean LLR per class, AUROC of -LLR for nonsense vs synonymous and missense vs
   synonymous with bootstrap 95% intervals, and the classes per codon position with the
   AUROCs within a codon position (a GC-rich genome's synonymous changes mostly break a G/C
   third position, which pulls against them in the pooled AUROC). Baselines: 0.5 (chance)
   and the same numbers with the LLR of an order-k Markov model of the genome.
3. **Bits per nucleotide** of the model on the sample windows (both strands), beside
   uniform (2.0) and order-0 / order-k Markov models. The Markov models are cross-fitted:
   the windows are split in two folds by position and each fold is scored by models
   counted on both strands of the genome outside that fold's windows (add-one smoothing;
   a position after an N or near a window start uses the longest context it has).

A valid CDS: type CDS, not a pseudogene, on a strand, at least three complete codons and
no stop codon before its last codon under its genetic code (``transl_table`` of the
annotation, else ``genetic_code``, else 11; ``genetic_code`` given explicitly overrides
the annotation). If most CDSs have internal stops, the genetic code is wrong: an error.

    report = check_model(source_or_module, "genome.fna", "genes.gff", CheckOptions())
    print(format_report(report))
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dnahnet_core.alphabet import ALPHABET, N, encode, reverse_complement_tokens
from dnahnet_core.data.markov import MarkovModel, highest_markov, markov_bits
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.annotations import AnnotatedGenome, Feature
from dnahnet_core.tasks.classification_metrics import auroc_with_interval
from dnahnet_core.tasks.genetic_code import amino_acids, feature_codes, genetic_code_table
from dnahnet_core.tasks.segments_report import genes_from_features

CLASSES = ("synonymous", "missense", "nonsense")

_COMPLEMENT = np.array([3, 2, 1, 0, N], dtype=np.uint8)  # token -> its complement (A=0 ... T=3)


# ---------------------------------------------------------------- coding map


@dataclass
class CodingMap:
    """The valid CDSs of a genome as codons, and the codon position of every base.

    ``codon_sites[i]``: forward-strand 0-based positions of the three bases of codon ``i``
    (5'->3' on its gene's strand); ``codon_tokens[i]``: those bases on the gene's strand;
    ``codon_gene[i]``: index in ``genes``; ``internal[i]``: not a gene's first or last
    codon. ``frame[contig]``: [2, length] int8, the codon position (1..3) of each base on
    the + (row 0) and - (row 1) strand, 0 outside CDSs, -1 where CDSs in different frames
    overlap; ``coverage[contig]``: how many valid CDSs cover each base (either strand).
    """

    contigs: list[str]
    tokens: dict[str, np.ndarray]
    genes: list[Feature]
    gene_codes: list[int]
    codon_sites: np.ndarray  # [n, 3] int64
    codon_tokens: np.ndarray  # [n, 3] uint8
    codon_gene: np.ndarray  # [n] int64
    codon_contig: np.ndarray  # [n] int64, index in ``contigs``
    internal: np.ndarray  # [n] bool
    frame: dict[str, np.ndarray]
    coverage: dict[str, np.ndarray]
    skipped: Counter = field(default_factory=Counter)
    codes: Counter = field(default_factory=Counter)  # genetic code -> valid CDSs
    code_source: str = ""


def coding_map(genome: AnnotatedGenome, genetic_code: int | None = None) -> CodingMap:
    """The valid CDSs of ``genome`` (see the module doc) as a ``CodingMap``."""
    contigs = list(genome.contigs)
    tokens = {name: encode(seq, where=name) for name, seq in genome.contigs.items()}
    cds = genome.features_of("CDS")
    label = genome.sources[-1] if genome.sources else "annotation"
    if not cds:
        kinds = sorted({f.type for f in genome.features})
        raise DnahnetError(
            f"{label}: no CDS features (types present: {', '.join(kinds) or 'none'})"
        )
    codes, source = feature_codes(cds, genetic_code)
    skipped: Counter = Counter()
    candidates = []
    for feature, code in zip(cds, codes, strict=True):
        if feature.pseudo:
            skipped["pseudogene"] += 1
        elif feature.strand not in {"+", "-"}:
            skipped["no strand"] += 1
        else:
            candidates.append((feature, code))
    lengths = {name: len(t) for name, t in tokens.items()}
    transcripts = genes_from_features([f for f, _ in candidates], lengths)
    genes, gene_codes, sites, gene_tokens, stopped = [], [], [], [], 0
    for (feature, code), transcript in zip(candidates, transcripts, strict=True):
        positions = transcript.positions[feature.phase :]
        positions = positions[: len(positions) - len(positions) % 3].reshape(-1, 3)
        if len(positions) < 3:
            skipped["fewer than 3 complete codons"] += 1
            continue
        bases = tokens[feature.contig][positions]
        if feature.strand == "-":
            bases = _COMPLEMENT[bases]
        amino = amino_acids(bases, genetic_code_table(code))
        if (amino[:-1] == b"*").any():
            skipped["stop codon inside the CDS"] += 1
            stopped += 1
            continue
        genes.append(feature)
        gene_codes.append(code)
        sites.append(positions)
        gene_tokens.append(bases)
    considered = len(genes) + stopped
    if considered and stopped > considered / 2:
        used = ", ".join(str(c) for c in sorted(set(codes)))
        raise DnahnetError(
            f"{label}: {stopped} of {considered} CDS have a stop codon inside under genetic "
            f"code {used} ({source}); the genetic code is probably wrong: give --genetic-code "
            "(e.g. 4 for Mycoplasma and Spiroplasma)"
        )
    if not genes:
        raise DnahnetError(f"{label}: no CDS can be checked ({_reasons(skipped)})")
    return _assemble(contigs, tokens, genes, gene_codes, sites, gene_tokens, skipped, source)


def _assemble(contigs, tokens, genes, gene_codes, sites, gene_tokens, skipped, source):
    contig_index = {name: i for i, name in enumerate(contigs)}
    frame = {name: np.zeros((2, len(t)), dtype=np.int8) for name, t in tokens.items()}
    coverage = {name: np.zeros(len(t), dtype=np.int32) for name, t in tokens.items()}
    internal = []
    for gene, positions in zip(genes, sites, strict=True):
        flat = positions.ravel()
        row = frame[gene.contig][0 if gene.strand == "+" else 1]
        wanted = np.tile(np.array([1, 2, 3], dtype=np.int8), len(positions))
        current = row[flat]
        row[flat] = np.where((current == 0) | (current == wanted), wanted, -1)
        np.add.at(coverage[gene.contig], np.unique(flat), 1)
        inner = np.ones(len(positions), dtype=bool)
        inner[[0, -1]] = False
        internal.append(inner)
    counts = [len(s) for s in sites]
    return CodingMap(
        contigs=contigs,
        tokens=tokens,
        genes=genes,
        gene_codes=gene_codes,
        codon_sites=np.concatenate(sites).astype(np.int64),
        codon_tokens=np.concatenate(gene_tokens).astype(np.uint8),
        codon_gene=np.repeat(np.arange(len(genes)), counts),
        codon_contig=np.repeat([contig_index[g.contig] for g in genes], counts),
        internal=np.concatenate(internal),
        frame=frame,
        coverage=coverage,
        skipped=skipped,
        codes=Counter(gene_codes),
        code_source=source,
    )


def _reasons(counter: Counter) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(counter.items())) or "none"


# ---------------------------------------------------------------- SNVs


@dataclass(frozen=True)
class CodingSnv:
    """One SNV inside a CDS; ``ref``/``alt`` on the forward strand, codons on the gene's."""

    contig: str
    position: int  # 0-based, forward strand
    ref: str
    alt: str
    gene: str
    strand: str
    codon_position: int  # 1..3 on the gene's strand
    ref_codon: str
    alt_codon: str
    ref_amino_acid: str
    alt_amino_acid: str
    kind: str  # synonymous, missense or nonsense


def _classify(cmap: CodingMap, codon: np.ndarray, offset: np.ndarray, alt: np.ndarray):
    """Alt codons (gene strand tokens) and class index (0..2, -1 = not classifiable)."""
    ref_codons = cmap.codon_tokens[codon]
    alt_codons = ref_codons.copy()
    alt_codons[np.arange(len(codon)), offset] = alt
    genes = cmap.codon_gene[codon]
    kinds = np.full(len(codon), -1, dtype=np.int64)
    ref_aa = np.zeros(len(codon), dtype="S1")
    alt_aa = np.zeros(len(codon), dtype="S1")
    for code in np.unique(np.asarray(cmap.gene_codes)[genes]) if len(codon) else []:
        rows = np.asarray(cmap.gene_codes)[genes] == code
        table = genetic_code_table(int(code))
        ref_aa[rows] = amino_acids(ref_codons[rows], table)
        alt_aa[rows] = amino_acids(alt_codons[rows], table)
    known = (ref_aa != b"X") & (alt_aa != b"X") & (ref_aa != b"*")
    kinds[known & (alt_aa == b"*")] = 2
    kinds[known & (alt_aa != b"*") & (alt_aa == ref_aa)] = 0
    kinds[known & (alt_aa != b"*") & (alt_aa != ref_aa)] = 1
    return alt_codons, ref_aa, alt_aa, kinds


def _snv_records(cmap, codon, offset, alt_gene, alt_codons, ref_aa, alt_aa, kinds):
    records = []
    for i in range(len(codon)):
        gene = cmap.genes[cmap.codon_gene[codon[i]]]
        position = int(cmap.codon_sites[codon[i], offset[i]])
        ref_forward = int(cmap.tokens[gene.contig][position])
        alt_forward = int(alt_gene[i]) if gene.strand == "+" else int(_COMPLEMENT[alt_gene[i]])
        records.append(
            CodingSnv(
                contig=gene.contig,
                position=position,
                ref=ALPHABET[ref_forward],
                alt=ALPHABET[alt_forward],
                gene=gene.label,
                strand=gene.strand,
                codon_position=int(offset[i]) + 1,
                ref_codon="".join(ALPHABET[b] for b in cmap.codon_tokens[codon[i]]),
                alt_codon="".join(ALPHABET[b] for b in alt_codons[i]),
                ref_amino_acid=ref_aa[i].decode(),
                alt_amino_acid=alt_aa[i].decode(),
                kind=CLASSES[kinds[i]],
            )
        )
    return records


def snvs_at(cmap: CodingMap, contig: str, position: int, alt: str) -> list[CodingSnv]:
    """The SNV ``alt`` (forward strand) at 0-based ``position``, once per valid CDS codon
    that contains the base (none outside them, and none for a codon with an N)."""
    if contig not in cmap.tokens:
        raise DnahnetError(f"{contig}: no such contig")
    alt_token = int(encode(alt)[0])
    index = cmap.contigs.index(contig)
    rows, offsets = np.nonzero(
        (cmap.codon_sites == position) & (cmap.codon_contig == index)[:, None]
    )
    genes = [cmap.genes[g] for g in cmap.codon_gene[rows]]
    alt_gene = np.array(
        [alt_token if g.strand == "+" else int(_COMPLEMENT[alt_token]) for g in genes],
        dtype=np.uint8,
    )
    alt_codons, ref_aa, alt_aa, kinds = _classify(cmap, rows, offsets, alt_gene)
    keep = kinds >= 0
    return _snv_records(
        cmap, rows[keep], offsets[keep], alt_gene[keep], alt_codons[keep], ref_aa[keep],
        alt_aa[keep], kinds[keep],
    )


def sample_snvs(cmap: CodingMap, per_class: int, seed: int = 0) -> list[CodingSnv]:
    """Up to ``per_class`` SNVs of each class, uniform within the class (module doc).

    Draws (codon, codon position, alternative base) uniformly among internal codons of
    valid CDSs at bases one CDS covers, and keeps the first ``per_class`` distinct SNVs of
    each class; fewer when the genome has fewer. Sorted by contig and position.
    """
    rng = np.random.default_rng(seed)
    single = _single_coverage(cmap)
    candidates = np.flatnonzero(cmap.internal)
    chosen = [np.zeros(0, dtype=np.int64) for _ in CLASSES]  # keys: 12 * codon + 4 * offset + alt
    # a class the genome lacks never fills: stop once every SNV was likely drawn
    budget = min(20 * 9 * candidates.size, 50_000_000)
    batch = max(4096, min(64 * per_class, budget, 1 << 22))  # draws held in memory at once
    drawn = 0
    while candidates.size and drawn < budget and min(map(len, chosen)) < per_class:
        codon = candidates[rng.integers(0, candidates.size, batch)]
        offset = rng.integers(0, 3, batch)
        ref = cmap.codon_tokens[codon, offset].astype(np.int64)
        alt_gene = ((ref + rng.integers(1, 4, batch)) % 4).astype(np.uint8)
        drawn += batch
        usable = (ref != N) & single[codon, offset]
        codon, offset, alt_gene = codon[usable], offset[usable], alt_gene[usable]
        kinds = _classify(cmap, codon, offset, alt_gene)[3]
        keys = 12 * codon + 4 * offset + alt_gene
        for kind in range(len(CLASSES)):
            need = per_class - len(chosen[kind])
            if need <= 0:
                continue
            new = keys[kinds == kind]
            new = new[~np.isin(new, chosen[kind])]
            _, first = np.unique(new, return_index=True)
            chosen[kind] = np.concatenate([chosen[kind], new[np.sort(first)][:need]])
    keys = np.concatenate(chosen)
    if not keys.size:
        return []
    codon, offset, alt_gene = keys // 12, (keys % 12) // 4, (keys % 4).astype(np.uint8)
    alt_codons, ref_aa, alt_aa, kinds = _classify(cmap, codon, offset, alt_gene)
    records = _snv_records(cmap, codon, offset, alt_gene, alt_codons, ref_aa, alt_aa, kinds)
    order = {name: i for i, name in enumerate(cmap.contigs)}
    return sorted(records, key=lambda s: (order[s.contig], s.position, s.alt))


def _single_coverage(cmap: CodingMap) -> np.ndarray:
    """[n_codons, 3] bool: the base lies in exactly one valid CDS."""
    out = np.zeros(cmap.codon_sites.shape, dtype=bool)
    for index, name in enumerate(cmap.contigs):
        rows = cmap.codon_contig == index
        out[rows] = cmap.coverage[name][cmap.codon_sites[rows]] == 1
    return out


# ---------------------------------------------------------------- genome sample


@dataclass(frozen=True)
class SampleWindow:
    contig: str
    start: int  # 0-based
    end: int  # exclusive
    fold: int  # 0 or 1: which cross-fitted Markov models score it


def sample_windows(
    cmap: CodingMap, max_bases: int, window: int, seed: int = 0
) -> list[SampleWindow]:
    """A seeded sample of non-overlapping ``window``-nt tiles totalling <= ``max_bases``.

    Tiles start at multiples of ``window`` on each contig (a contig shorter than one
    window is one tile); tiles at least half covered by valid CDSs are preferred (all
    tiles when none is). At least one tile is taken. Sorted by contig and start; folds
    alternate along that order.
    """
    tiles = []
    for name in cmap.contigs:
        length = len(cmap.tokens[name])
        starts = range(0, max(1, length - window + 1), window) if length >= window else [0]
        for start in starts:
            end = min(start + window, length)
            if end > start:
                coding = (cmap.frame[name][:, start:end] != 0).any(axis=0).mean()
                tiles.append((name, start, end, coding))
    if not tiles:
        raise DnahnetError("the genome has no sequence to sample")
    rich = [t for t in tiles if t[3] >= 0.5] or tiles
    order = np.random.default_rng(seed).permutation(len(rich))
    chosen, total = [], 0
    for i in order:
        name, start, end, _ = rich[i]
        if chosen and total + (end - start) > max_bases:
            break
        chosen.append((name, start, end))
        total += end - start
    rank = {name: i for i, name in enumerate(cmap.contigs)}
    chosen.sort(key=lambda t: (rank[t[0]], t[1]))
    return [SampleWindow(name, start, end, i % 2) for i, (name, start, end) in enumerate(chosen)]


# ---------------------------------------------------------------- Markov baselines


def _outside(cmap: CodingMap, windows: Sequence[SampleWindow]) -> list[np.ndarray]:
    """The genome's sequence outside ``windows``, as pieces."""
    pieces = []
    for name in cmap.contigs:
        cursor = 0
        for w in sorted((w for w in windows if w.contig == name), key=lambda w: w.start):
            pieces.append(cmap.tokens[name][cursor : w.start])
            cursor = w.end
        pieces.append(cmap.tokens[name][cursor:])
    return [p for p in pieces if len(p)]


def markov_snv_llr(
    model: MarkovModel, cmap: CodingMap, snvs: Sequence[CodingSnv], reverse_complement: bool = True
) -> np.ndarray:
    """LLR (nats) of each SNV under a Markov model: the k-mers that contain it, exactly."""
    k = model.order
    out = np.zeros(len(snvs))
    for i, snv in enumerate(snvs):
        contig = cmap.tokens[snv.contig]
        lo, hi = max(0, snv.position - k), min(len(contig), snv.position + k + 1)
        ref = contig[lo:hi]
        alt = ref.copy()
        alt[snv.position - lo] = encode(snv.alt)[0]
        strands = [(ref, alt)]
        if reverse_complement:
            strands.append((reverse_complement_tokens(ref), reverse_complement_tokens(alt)))
        values = [np.nansum(model.log_probs(a)) - np.nansum(model.log_probs(r)) for r, a in strands]
        out[i] = float(np.mean(values))
    return out


# ---------------------------------------------------------------- running the model


@dataclass
class SampleCounts:
    """What the genome sample gave, per window (both strands summed)."""

    boundaries: np.ndarray  # [windows, stages, 3]: boundaries at codon positions 1..3
    bases: np.ndarray  # [windows, 3]: CDS bases at codon positions 1..3
    stage_boundaries: np.ndarray  # [stages]: boundaries at every counted position
    positions: int  # positions counted for boundary rates (all but each pass's first)
    model_bits: np.ndarray  # [windows]: -log2 P of the non-N positions
    nucleotides: np.ndarray  # [windows]: non-N positions scored (both strands)


def run_sample(
    model, cmap: CodingMap, windows: Sequence[SampleWindow], *, device, batch_size: int = 4,
    on_progress=None, boundaries_only: bool = False,
) -> SampleCounts:
    """Both strands of every window through the model (``engine.forward_windows``);
    ``boundaries_only``: the encoders and routers only (no bits per nucleotide)."""
    from dnahnet_core.tasks.engine import forward_windows

    passes = []
    for w in windows:
        forward = cmap.tokens[w.contig][w.start : w.end]
        passes += [forward, reverse_complement_tokens(forward)]
    counts = None
    bases = np.zeros((len(windows), 3), dtype=np.int64)
    bits = np.zeros(len(windows))
    nucleotides = np.zeros(len(windows), dtype=np.int64)
    positions = 0
    outputs = forward_windows(model, passes, device, batch_size, boundaries_only=boundaries_only)
    for k, out in enumerate(outputs):
        i, strand = divmod(k, 2)
        w = windows[i]
        frame = cmap.frame[w.contig][strand, w.start : w.end]
        frame = frame[::-1] if strand else frame
        valid = passes[k] != N
        if out.log_probs is not None:
            bits[i] -= float(out.log_probs[valid].astype(np.float64).sum()) / math.log(2)
        nucleotides[i] += int(valid.sum())
        if counts is None:
            counts = np.zeros((len(windows), len(out.boundary_mask), 3), dtype=np.int64)
            stage_boundaries = np.zeros(len(out.boundary_mask), dtype=np.int64)
        inner = frame[1:]  # a window's first position is always a boundary: not counted
        positions += len(inner)
        for c in range(3):
            bases[i, c] += int((inner == c + 1).sum())
        for s, mask in enumerate(out.boundary_mask):
            hits = mask[1:]
            stage_boundaries[s] += int(hits.sum())
            for c in range(3):
                counts[i, s, c] += int(hits[inner == c + 1].sum())
        if on_progress is not None:
            on_progress(len(passes[k]))
    if counts is None:
        counts, stage_boundaries = np.zeros((0, 0, 3), dtype=np.int64), np.zeros(0, np.int64)
    return SampleCounts(counts, bases, stage_boundaries, positions, bits, nucleotides)


def score_snvs(
    model, cmap: CodingMap, snvs: Sequence[CodingSnv], *, window: int,
    reverse_complement: bool = True, batch_size: int = 16, device="auto", on_progress=None,
) -> np.ndarray:
    """LLR of each SNV as ``score-variants`` computes it (windows centred on the SNV,
    clipped at contig ends; mean of both strands unless ``reverse_complement`` is False)."""
    from dnahnet_core.tasks.engine import Engine, Site
    from dnahnet_core.tasks.windows import centred_window, substituted_window, window_tokens

    groups: dict[tuple[str, int], list[int]] = {}
    for i, snv in enumerate(snvs):
        groups.setdefault((snv.contig, snv.position), []).append(i)
    sites = []
    for (contig, position), members in groups.items():
        tokens = cmap.tokens[contig]
        win = centred_window(len(tokens), position, position + 1, window)
        alts = [
            substituted_window(tokens, win, position, position + 1, encode(snvs[i].alt))
            for i in members
        ]
        sites.append(Site(np.ascontiguousarray(window_tokens(tokens, win)), alts, key=members))
    engine = Engine(model, device, batch_size=batch_size, reverse_complement=reverse_complement)
    llr = np.zeros(len(snvs))
    for score in engine.score(sites):
        llr[score.key] = score.delta
        if on_progress is not None:
            on_progress(len(score.key))
    return llr


# ---------------------------------------------------------------- metrics


def periodicity(rates: Sequence[float]) -> float | None:
    """max/min of the boundary rates at codon positions 1..3; inf when only the minimum is
    0; None when there is no boundary (or no base) to compare."""
    values = np.asarray(rates, dtype=np.float64)
    if np.isnan(values).any() or values.max() <= 0:
        return None
    low = values.min()
    return math.inf if low == 0 else float(values.max() / low)


def _rates(boundaries: np.ndarray, bases: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return boundaries / bases


def boundary_report(counts: SampleCounts, *, bootstrap: int = 1000, seed: int = 0,
                    untrained: SampleCounts | None = None) -> list[dict]:
    """Per stage: rates by codon position, periodicity (with a bootstrap interval over
    windows), the overall rates and the baselines: no codon signal (periodicity 1) and,
    given its ``untrained`` counts on the same windows, the same architecture untrained
    (what base composition by codon position alone does to the routers)."""
    stages = _stage_rates(counts, bootstrap, seed)
    if untrained is not None:
        for stage, blank in zip(stages, _stage_rates(untrained, bootstrap, seed), strict=True):
            stage["baseline"]["untrained"] = {
                key: blank[key] for key in ("rate_by_codon_position", "periodicity",
                                            "periodicity_ci95")
            }
    return stages


def _stage_rates(counts: SampleCounts, bootstrap: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    n_windows = counts.boundaries.shape[0]
    draws = rng.integers(0, n_windows, (bootstrap, n_windows)) if n_windows and bootstrap else None
    stages = []
    for s in range(counts.boundaries.shape[1]):
        hits = counts.boundaries[:, s].sum(axis=0)
        bases = counts.bases.sum(axis=0)
        rates = _rates(hits, bases)
        in_cds = float(hits.sum() / bases.sum()) if bases.sum() else None
        interval = None
        if draws is not None:
            resampled = _rates(counts.boundaries[draws, s].sum(axis=1),
                               counts.bases[draws].sum(axis=1))
            values = np.array([_number(periodicity(r)) for r in resampled])
            if np.isfinite(values).any() or np.isinf(values).any():
                interval = [float(np.nanquantile(values, q, method="inverted_cdf"))
                            for q in (0.025, 0.975)]
        stages.append({
            "stage": s + 1,
            "rate_by_codon_position": [_float(r) for r in rates],
            "boundaries_by_codon_position": hits.tolist(),
            "bases_by_codon_position": bases.tolist(),
            "periodicity": periodicity(rates),
            "periodicity_ci95": interval,
            "rate_in_cds": in_cds,
            "rate_overall": float(counts.stage_boundaries[s] / counts.positions)
            if counts.positions else None,
            "baseline": {"rate_by_codon_position": [in_cds] * 3, "periodicity": 1.0},
        })
    return stages


def _number(value: float | None) -> float:
    return math.nan if value is None else value


def _float(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


MIN_PER_CODON_POSITION = 10  # both classes need this many SNVs for a per-position AUROC


def snv_report(
    snvs: Sequence[CodingSnv], llr: np.ndarray, markov_llr: np.ndarray, *,
    bootstrap: int = 1000, seed: int = 0,
) -> dict:
    """Mean LLR per class and per codon position, AUROCs of -LLR against synonymous
    (pooled and within each codon position), for the model and the Markov baseline."""
    kinds = np.array([s.kind for s in snvs])
    position = np.array([s.codon_position for s in snvs])
    classes = {}
    for kind in CLASSES:
        rows = kinds == kind
        classes[kind] = {
            "n": int(rows.sum()),
            "mean_llr": _mean(llr[rows]),
            "markov_mean_llr": _mean(markov_llr[rows]),
            "by_codon_position": {
                str(c): {"n": int((rows & (position == c)).sum()),
                         "mean_llr": _mean(llr[rows & (position == c)]),
                         "markov_mean_llr": _mean(markov_llr[rows & (position == c)])}
                for c in (1, 2, 3)
            },
        }

    def comparisons(where: np.ndarray, minimum: int) -> dict:
        result = {}
        for kind in ("nonsense", "missense"):
            pos, neg = where & (kinds == kind), where & (kinds == "synonymous")
            if pos.sum() < minimum or neg.sum() < minimum:
                result[f"{kind}_vs_synonymous"] = None
                continue
            model = auroc_with_interval(-llr[pos], -llr[neg], bootstrap=bootstrap, seed=seed)
            markov = auroc_with_interval(-markov_llr[pos], -markov_llr[neg], bootstrap=0)
            result[f"{kind}_vs_synonymous"] = {**model, "markov_auroc": markov["auroc"],
                                               "chance": 0.5}
        return result

    everywhere = np.ones(len(snvs), bool)
    return {
        "classes": classes,
        "auroc": comparisons(everywhere, 1),
        "auroc_by_codon_position": {
            str(c): comparisons(position == c, MIN_PER_CODON_POSITION) for c in (1, 2, 3)
        },
    }


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


# ---------------------------------------------------------------- the whole check


@dataclass
class CheckOptions:
    max_bases: int = 131_072  # genome sample (per strand) for boundaries and bits/nt; 0 = skip
    sample_window: int = 8192
    snvs_per_class: int = 100  # 0 = skip the SNV check
    snv_window: int = 1024
    reverse_complement: bool = True  # SNV LLR: mean of both strands
    genetic_code: int | None = None  # None: the annotation's transl_table, else 11
    markov_order: int = 5
    seed: int = 0
    bootstrap: int = 1000
    batch_size: int = 4
    untrained_baseline: bool = True  # boundaries of the same architecture, untrained (seed)

    def validate(self) -> None:
        checks = [
            ("--max-bases", self.max_bases, 0), ("--sample-window", self.sample_window, 16),
            ("--snvs", self.snvs_per_class, 0), ("--window", self.snv_window, 2),
            ("--markov-order", self.markov_order, 0), ("--bootstrap", self.bootstrap, 0),
            ("--batch-size", self.batch_size, 1),
        ]
        for flag, value, low in checks:
            if value < low:
                raise DnahnetError(f"{flag} {value}: must be >= {low}")
        if self.genetic_code is not None:
            genetic_code_table(self.genetic_code)


def check_model(
    model, genome_path, annotation_path=None, options: CheckOptions | None = None, *,
    device="auto", chrom_map: dict[str, str] | None = None, output=None,
) -> dict:
    """Run the three checks (module doc) and return the report (``format_report`` prints
    it); ``output``: also write it as JSON there (``-``: standard output). ``model``: a
    ``ModelSource`` or a loaded model, loaded once the inputs are read and sampled."""
    from dnahnet_core import __version__
    from dnahnet_core.io.annotations import load_annotated_genome
    from dnahnet_core.model_source import ready_model
    from dnahnet_core.progress import log, progress

    options = options or CheckOptions()
    options.validate()
    started = time.perf_counter()
    genome = load_annotated_genome(genome_path, annotation_path, chrom_map=chrom_map)
    cmap = coding_map(genome, options.genetic_code)
    windows = (
        sample_windows(cmap, options.max_bases, options.sample_window, options.seed)
        if options.max_bases else []
    )
    snvs = sample_snvs(cmap, options.snvs_per_class, options.seed) if options.snvs_per_class else []
    network, target = ready_model(model, device)
    genome_bases = sum(len(t) for t in cmap.tokens.values())
    report: dict = {
        "dnahnet_version": __version__,
        "model": getattr(model, "name", None) or type(model).__name__,
        "parameters": sum(p.numel() for p in network.parameters()),
        "inputs": list(genome.sources),
        "genome_bases": genome_bases,
        "cds": {"valid": len(cmap.genes), "skipped": dict(cmap.skipped)},
        "genetic_code": {"source": cmap.code_source,
                         "cds_per_code": {str(k): v for k, v in sorted(cmap.codes.items())}},
        "options": {k: v for k, v in vars(options).items()},
        "device": str(target),
        "precision": "fp32",
        "seconds": {},
    }

    sample_bases = sum(w.end - w.start for w in windows)
    if windows:
        clock = time.perf_counter()
        with progress("nt") as bar:
            task = bar.add_task("genome sample, both strands", total=2 * sample_bases, rate="")
            counts = run_sample(network, cmap, windows, device=target,
                                batch_size=options.batch_size,
                                on_progress=lambda n: bar.advance(task, n))
        report["sample"] = {
            "windows": len(windows), "window": options.sample_window, "bases": sample_bases,
            "strands": "both (each gene read on its own strand)",
            "fraction_of_genome": sample_bases / genome_bases,
        }
        untrained = None
        config = getattr(network, "config", None)
        if options.untrained_baseline and counts.boundaries.shape[1] and config is not None:
            from dnahnet_core.model import build_model

            blank = build_model(config, seed=options.seed).to(target).eval()
            with progress("nt") as bar:
                task = bar.add_task("the same sample, untrained architecture",
                                    total=2 * sample_bases, rate="")
                untrained = run_sample(blank, cmap, windows, device=target,
                                       batch_size=options.batch_size, boundaries_only=True,
                                       on_progress=lambda n: bar.advance(task, n))
        report["boundaries"] = boundary_report(counts, bootstrap=options.bootstrap,
                                               seed=options.seed, untrained=untrained)
        report["bits_per_nucleotide"] = _bits_report(cmap, windows, counts, options.markov_order)
        report["seconds"]["sample"] = time.perf_counter() - clock
    if snvs:
        clock = time.perf_counter()
        with progress("SNVs") as bar:
            task = bar.add_task("SNVs", total=len(snvs), rate="")
            llr = score_snvs(network, cmap, snvs, window=options.snv_window,
                             reverse_complement=options.reverse_complement,
                             batch_size=options.batch_size, device=target,
                             on_progress=lambda n: bar.advance(task, n))
        markov = MarkovModel(options.markov_order).fit(cmap.tokens.values())
        markov_llr = markov_snv_llr(markov, cmap, snvs, options.reverse_complement)
        report["snvs"] = {
            "window": options.snv_window,
            "strands": "mean of both strands" if options.reverse_complement else "forward strand",
            "requested_per_class": options.snvs_per_class,
            "markov_baseline": f"order-{options.markov_order} Markov model of the whole genome "
            "(both strands, add-one smoothing)",
            **snv_report(snvs, llr, markov_llr, bootstrap=options.bootstrap, seed=options.seed),
            "columns": ["contig", "position", "ref", "alt", "gene", "strand", "codon_position",
                        "ref_codon", "alt_codon", "ref_amino_acid", "alt_amino_acid", "class",
                        "llr", "markov_llr"],
            "records": [
                [s.contig, s.position + 1, s.ref, s.alt, s.gene, s.strand, s.codon_position,
                 s.ref_codon, s.alt_codon, s.ref_amino_acid, s.alt_amino_acid, s.kind,
                 round(float(v), 5), round(float(m), 5)]
                for s, v, m in zip(snvs, llr, markov_llr, strict=True)
            ],
        }
        short = [k for k in CLASSES if report["snvs"]["classes"][k]["n"] < options.snvs_per_class]
        if short:
            log(f"check-model: the genome has fewer than {options.snvs_per_class} usable "
                f"{' / '.join(short)} SNVs; all of them were scored")
        report["seconds"]["snvs"] = time.perf_counter() - clock
    report["seconds"]["total"] = time.perf_counter() - started
    if output is not None:
        from dnahnet_core.io.reports import write_json_report

        write_json_report(output, report)
    return report


def _bits_report(cmap, windows, counts: SampleCounts, order: int) -> dict:
    nucleotides = int(counts.nucleotides.sum())
    bits = dict.fromkeys((0, order), 0.0)
    for fold in (0, 1):
        members = [w for w in windows if w.fold == fold]
        if not members:
            continue
        model = MarkovModel(order).fit(_outside(cmap, members))
        strands = []
        for w in members:
            forward = cmap.tokens[w.contig][w.start : w.end]
            strands += [forward, reverse_complement_tokens(forward)]
        fold_bits, _ = markov_bits(model, strands, list(bits))
        for k in bits:
            bits[k] += fold_bits[k]
    per_nt = (lambda total: total / nucleotides) if nucleotides else (lambda total: None)
    return {
        "model": per_nt(float(counts.model_bits.sum())),
        "uniform": 2.0,
        "markov_order_0": per_nt(bits[0]),
        f"markov_order_{order}": per_nt(bits[order]),
        "nucleotides": nucleotides,
        "markov_fit": "2-fold cross-fitted: each half of the sample windows is scored by "
        "models counted on both strands of the genome outside that half's windows "
        "(add-one smoothing)",
    }


# ---------------------------------------------------------------- output


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def _interval(values) -> str:
    return "" if not values else f" [{_fmt(values[0], 2)}, {_fmt(values[1], 2)}]"


def format_report(report: dict) -> str:
    """The report as readable text tables."""
    lines = [
        f"model: {report['model']} ({report['parameters'] / 1e6:.2f} M parameters), "
        f"{report['device']}, {report['precision']}",
        f"genome: {', '.join(report['inputs'])} ({report['genome_bases']:,} nt); "
        f"{report['cds']['valid']} CDS checked, skipped: "
        f"{_reasons(Counter(report['cds']['skipped']))}",
        f"genetic code: {', '.join(report['genetic_code']['cds_per_code'])} "
        f"({report['genetic_code']['source']})",
    ]
    if "sample" in report:
        sample = report["sample"]
        lines += [
            "",
            f"genome sample: {sample['windows']} windows of {sample['window']:,} nt = "
            f"{sample['bases']:,} nt ({100 * sample['fraction_of_genome']:.1f}% of the genome), "
            f"{sample['strands']}",
        ]
        if not report["boundaries"]:
            lines.append("boundaries: the model has no chunking stages")
        for stage in report["boundaries"]:
            r1, r2, r3 = (_fmt(r) for r in stage["rate_by_codon_position"])
            lines += [
                f"stage {stage['stage']} boundary rate in CDS by codon position 1 / 2 / 3: "
                f"{r1} / {r2} / {r3}; periodicity (max/min) {_fmt(stage['periodicity'], 2)}"
                f"{_interval(stage['periodicity_ci95'])}",
                f"  baseline without codon signal: {_fmt(stage['rate_in_cds'])} at every "
                f"position, periodicity 1.00; overall boundary rate {_fmt(stage['rate_overall'])}",
            ]
            blank = stage["baseline"].get("untrained")
            if blank is not None:
                lines.append(
                    f"  baseline the same architecture untrained (seed {report['options']['seed']}"
                    f"): periodicity {_fmt(blank['periodicity'], 2)}"
                    f"{_interval(blank['periodicity_ci95'])} (base composition alone)"
                )
        bits = report["bits_per_nucleotide"]
        key, order = highest_markov(bits)
        lines.append(
            f"bits per nucleotide: model {_fmt(bits['model'], 4)}; baselines: uniform 2.0000, "
            f"order-0 {_fmt(bits['markov_order_0'], 4)}, order-{order} Markov "
            f"{_fmt(bits[key], 4)} ({bits['nucleotides']:,} nt)"
        )
    if "snvs" in report:
        snvs = report["snvs"]
        lines += ["", f"SNVs in CDS: {snvs['window']:,}-nt windows, {snvs['strands']}; "
                  f"baseline LLR: {snvs['markov_baseline']}"]
        lines.append(f"{'class':<12}{'n':>6}{'mean LLR':>10}{'Markov':>9}   "
                     "mean LLR at codon position 1 / 2 / 3 (n)")
        for kind, row in snvs["classes"].items():
            by = row["by_codon_position"]
            cells = " / ".join(f"{_fmt(by[c]['mean_llr'])} ({by[c]['n']})" for c in "123")
            lines.append(f"{kind:<12}{row['n']:>6}{_fmt(row['mean_llr']):>10}"
                         f"{_fmt(row['markov_mean_llr']):>9}   {cells}")
        lines.append("AUROC of -LLR        model [95% CI]          Markov  chance")
        groups = [("all", snvs["auroc"])] + [
            (f"codon pos {c}", snvs["auroc_by_codon_position"][c]) for c in "123"
        ]
        for label, group in groups:
            for name, value in group.items():
                title = f"{name.split('_')[0]} vs syn ({label})"
                if value is None:
                    continue
                lines.append(f"{title:<30} {_fmt(value['auroc'])}{_interval(value['ci95']):<16} "
                             f"{_fmt(value['markov_auroc'])}   0.5")
    lines += ["", f"time: {report['seconds']['total']:.1f} s"]
    return "\n".join(lines) + "\n"
