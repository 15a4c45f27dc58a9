#!/usr/bin/env python
"""score-variants throughput (SNVs/s) and fidelity of the opt-in modes, in one run.

Every mode runs the whole ``score_vcf`` pipeline (VCF in, TSV out) on the same input
with the same model, one after the other in this process; each prints ALT alleles per
second, its speed-up over the first mode, the nucleotide positions sent through the
model (independent of machine load; not counted with worker processes), and its
Spearman and max |LLR difference| against ``exact`` (the TSV rounds to 1e-4). Modes:

    naive                two full windows per ALT allele (--no-prefix-reuse)
    previous             exact protocol as before issue 12: batches of 16 windows
    exact                exact protocol, the engine's defaults (batch 1 on CPU, 64 on GPU)
    bf16                 exact windows under bf16 autocast
    batch:N              exact protocol, batches of N windows
    downstream:N         windows summed only N nt past the variant
    stream:N             --genome-stream --downstream N (left contexts from one pass per
                         stretch of the contig; see tasks.variants.stream_site_scores)
    A+B                  both settings, e.g. stream:256+bf16

Input (``--vcf`` or generated): ``--positions`` positions of the bundled Mycoplasma alvi
genome, spread evenly over its contigs (``--spacing`` nt apart, or consecutive from
NZ_JNJU01000001.1:100,001 with ``--spacing 1``), each with ``--alts`` alternative bases
(1 = one SNV per record, as in a typical VCF; 3 = saturation mutagenesis).
``--clustered``: ``--positions`` SNVs ``--spacing`` nt apart in one stretch of
NZ_JNJU01000001.1 (dense: what ``--genome-stream`` shares its reference pass in).

    OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python benchmarks/score_speed.py \
        --positions 8 --modes previous,exact,bf16,downstream:1024 [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scoring_modes import mode_settings

from dnahnet_core.io.fasta import load_genome
from dnahnet_core.model import load_model
from dnahnet_core.tasks.variants import ScoreOptions, score_vcf

DEMO = Path(__file__).resolve().parents[1] / "dnahnet_core" / "demo_data"
GENOME = DEMO / "mycoplasma_alvi.fna.gz"
CONTIG, START = "NZ_JNJU01000001.1", 100_000


def write_records(path: Path, records) -> None:
    """A minimal VCF of (contig, 0-based position, REF, ALT) records."""
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    lines += [f"{n}\t{p + 1}\t.\t{r}\t{a}\t.\t.\t." for n, p, r, a in records]
    path.write_text("\n".join(lines) + "\n")


def write_clustered_vcf(path: Path, positions: int, spacing: int) -> int:
    """SNVs ``spacing`` nt apart from NZ_JNJU01000001.1:120,001, the ALT base rotating
    through the three others (a dense stretch of a population VCF)."""
    sequence = load_genome(GENOME)[CONTIG]
    records = []
    for i, pos in enumerate(range(120_000, 120_000 + spacing * positions, spacing)):
        ref = sequence[pos]
        records.append((CONTIG, pos, ref, "ACGT"[("ACGT".index(ref) + 1 + i % 3) % 4]))
    write_records(path, records)
    return positions


def write_vcf(path: Path, positions: int, alts: int, spacing: int) -> int:
    genome = load_genome(GENOME)
    if spacing == 1:
        sites = [(CONTIG, p) for p in range(START, START + positions)]
    else:
        long_contigs = [(n, s) for n, s in genome.items() if len(s) > 20_000]
        sites = [(n, p) for n, s in long_contigs for p in range(5_000, len(s) - 5_000, spacing)]
        sites = sites[:: max(1, len(sites) // positions)][:positions]
    records = []
    for name, pos in sites:
        ref = genome[name][pos]
        records.append((name, pos, ref, ",".join([b for b in "ACGT" if b != ref][:alts])))
    write_records(path, records)
    return len(sites) * alts


def write_mixed_vcf(path: Path) -> int:
    """109 records like the issue's bacterial VCF: 100 SNVs, 7 small indels, one 5.6-kb and
    one 46-kb deletion, spread over the Mycoplasma contigs (POS sorted per contig)."""
    genome = load_genome(GENOME)
    names = [n for n, s in genome.items() if len(s) > 100_000]
    rng = np.random.default_rng(12)
    records = []
    for i in range(107):
        name = names[i % len(names)]
        seq = genome[name]
        pos = int(rng.integers(10_000, len(seq) - 60_000))
        if i < 100:
            alt = "ACGT"[("ACGT".index(seq[pos]) + 1 + i % 3) % 4]
            records.append((name, pos, seq[pos], alt))
        elif i % 2:
            records.append((name, pos, seq[pos : pos + 4], seq[pos]))  # 3-nt deletion
        else:
            records.append((name, pos, seq[pos], seq[pos] + "GATTA"))  # 5-nt insertion
    for length in (5_600, 46_000):
        seq = genome[names[0]]
        pos = 20_000 if length == 5_600 else 150_000
        records.append((names[0], pos, seq[pos : pos + length + 1], seq[pos]))
    records.sort(key=lambda r: (names.index(r[0]), r[1]))
    write_records(path, records)
    return len(records)


def options_for(mode: str, args) -> ScoreOptions:
    settings = mode_settings(mode, previous_batch=16)
    return ScoreOptions(window=args.window, workers=args.workers, **settings)


def run(model, vcf: Path, out: Path, options: ScoreOptions, device: str):
    counter = {"positions": 0}
    hook = None
    if options.workers == 1:  # a hook would not pickle to worker processes
        hook = model.register_forward_pre_hook(
            lambda _m, args: counter.__setitem__("positions",
                                                 counter["positions"] + args[0].numel())
        )
    clock = time.process_time if device == "cpu" and options.workers == 1 else time.perf_counter
    started = clock()  # CPU time of this process: steady on a loaded machine
    summary = score_vcf(vcf, GENOME, out, model, options=options, device=device)
    seconds = clock() - started
    if hook is not None:
        hook.remove()
    table = pd.read_csv(out, sep="\t")
    return seconds, counter["positions"], table["llr"].to_numpy(), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model dir or preset (default: shipped)")
    parser.add_argument("--vcf", help="score this VCF (on the bundled Mycoplasma genome)")
    parser.add_argument("--mixed", action="store_true",
                        help="the issue's kind of VCF: 109 records, SNVs, indels, 2 long deletions")
    parser.add_argument("--window", type=int, default=8192)
    parser.add_argument("--positions", type=int, default=8)
    parser.add_argument("--alts", type=int, default=1, choices=[1, 2, 3])
    parser.add_argument("--clustered", action="store_true",
                        help="--positions SNVs --spacing nt apart in one stretch of a contig")
    parser.add_argument("--spacing", type=int, default=997)
    parser.add_argument("--modes", default="previous,exact,bf16,downstream:1024")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = load_model(args.model, device=args.device).eval()
    print(f"model {args.model or 'default'}, window {args.window}, both strands, device "
          f"{args.device}, {args.threads} torch threads, {args.workers} workers, "
          f"{platform.processor() or platform.machine()}, load {os.getloadavg()[0]:.1f}")
    modes = args.modes.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        vcf = Path(args.vcf) if args.vcf else tmp / "in.vcf"
        if args.mixed:
            print(f"mixed VCF: {write_mixed_vcf(vcf)} records")
        elif args.clustered:
            n = write_clustered_vcf(vcf, args.positions, args.spacing)
            print(f"{n} SNVs {args.spacing} nt apart from {CONTIG}:120,001")
        elif not args.vcf:
            n = write_vcf(vcf, args.positions, args.alts, args.spacing)
            print(f"{args.positions} positions x {args.alts} ALT = {n} SNVs")
        write_vcf(tmp / "warm.vcf", 1, 1, 1)
        run(model, tmp / "warm.vcf", tmp / "warm.tsv", ScoreOptions(window=512), args.device)
        for mode in modes:
            seconds, positions, llr, summary = run(
                model, vcf, tmp / "out.tsv", options_for(mode, args), args.device
            )
            results[mode] = (seconds, positions, llr)
            counted = f"{positions:,} positions" if args.workers == 1 else "positions not counted"
            peak = max(resource.getrusage(who).ru_maxrss
                       for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
            print(f"  {mode:16s} {summary.scored} alleles in {seconds:8.1f} s = "
                  f"{summary.scored / seconds:7.3f} /s, {counted}, peak RSS so far "
                  f"{peak:.0f} MiB (largest process)", flush=True)
    first = modes[0]
    exact = results.get("exact", (None, None, None))[2]
    kind = "CPU" if args.device == "cpu" and args.workers == 1 else "wall"
    print(f"\n({kind} seconds)")
    print(f"| mode | alleles/s | speed-up vs {first} | positions | Spearman vs exact "
          "| max abs diff |")
    print("|---|---|---|---|---|---|")
    for mode, (seconds, positions, llr) in results.items():
        speed = results[first][0] / seconds
        if exact is not None and mode != "exact":
            fidelity = (f"{pd.Series(llr).rank().corr(pd.Series(exact).rank()):.4f} | "
                        f"{np.abs(llr - exact).max():.3g}")
        else:
            fidelity = "1 | 0" if mode == "exact" else "– | –"
        shown = f"{positions:,}" if args.workers == 1 else "–"
        print(f"| {mode} | {len(llr) / seconds:.3f} | {speed:.2f}x | {shown} | {fidelity} |")


if __name__ == "__main__":
    main()
