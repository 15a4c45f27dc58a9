#!/usr/bin/env python
"""Essentiality throughput (genes/s) and fidelity of the opt-in modes, in one run.

Every mode scores the same genes with the same model, one after the other in this
process; each prints genes/s, its speed-up over the first mode, and its Spearman and
max |score difference| against the exact protocol (``exact``). Modes:

    previous             exact protocol as before issue 12: batches of 8 windows
    exact                exact protocol, the engine's defaults (batch 1 on CPU, 64 on GPU)
    bf16                 exact windows under bf16 autocast
    batch:N              exact protocol, batches of N windows
    downstream:N         windows summed only N nt past the cassette
    stream:N             --genome-stream with --downstream N (left context from one run
                         per stretch of --window nt per strand)

Genes: an evenly spaced sample of ``--genes`` scorable CDS (0 = all). A stream mode's
cost is per genome, not per gene: it always scores every gene of the genome (its rate
is then genes/s over all of them, and its fidelity is measured over the sample).
``--workers`` applies to every CPU mode. Defaults: the bundled 0.84 Mbp Mycoplasma alvi
draft (686 CDS), the shipped model, 8,192-nt windows, both strands (the CLI defaults).

    OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python benchmarks/essentiality_speed.py \
        --genes 16 --modes previous,exact,bf16,downstream:1024,stream:1024 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scoring_modes import mode_settings

from dnahnet_core.io.annotations import load_annotated_genome
from dnahnet_core.model import load_model
from dnahnet_core.tasks.engine import ModelWorkers
from dnahnet_core.tasks.essentiality import score_knockouts, stream_knockouts
from dnahnet_core.tasks.knockouts import plan_knockouts

DEMO = Path(__file__).resolve().parents[1] / "dnahnet_core" / "demo_data"


def spearman(a, b) -> float:
    return float(pd.Series(a).rank().corr(pd.Series(b).rank()))


def run_mode(mode: str, plan, sample, model, args, pool) -> tuple[list[float], float, int]:
    """(scores of the sample, seconds, genes scored); seconds of this process's CPU time
    with one worker on a CPU (steady on a loaded machine), wall clock otherwise."""
    first, *others = mode.split("+")
    name, _, value = first.partition(":")
    clock = time.process_time if args.device == "cpu" and args.workers == 1 else time.perf_counter
    started = clock()
    if name == "stream":
        extra = mode_settings("+".join(others), previous_batch=8) if others else {}
        everything = stream_knockouts(
            plan.knockouts, plan.genome, model, window=args.window, downstream=int(value),
            device=args.device, workers=pool, circular=args.circular, **extra,
        )
        seconds = clock() - started
        index = {id(k): i for i, k in enumerate(plan.knockouts)}
        return [everything[index[id(k)]] for k in sample], seconds, len(plan.knockouts)
    options = mode_settings(mode, previous_batch=8)
    scores = score_knockouts(sample, model, device=args.device, workers=pool, **options)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    return scores, clock() - started, len(sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--genome", default=str(DEMO / "mycoplasma_alvi.fna.gz"))
    parser.add_argument("--annotation", default=str(DEMO / "mycoplasma_alvi.gff.gz"))
    parser.add_argument("--model", default=None, help="model dir or preset (default: shipped)")
    parser.add_argument("--genes", type=int, default=16, help="sample size (0: all genes)")
    parser.add_argument("--modes", default="previous,exact,bf16,downstream:1024,stream:1024")
    parser.add_argument("--window", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--circular", action="store_true")
    parser.add_argument("--json", help="write the per-gene scores and timings here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    genome = load_annotated_genome(args.genome, args.annotation or None)
    genes = genome.features_of("CDS")
    plan = plan_knockouts(genome, genes, window=args.window, offset=12, circular=args.circular)
    step = max(1, len(plan.knockouts) // args.genes) if args.genes else 1
    sample = plan.knockouts[::step][: args.genes or None]
    model = load_model(args.model, device=args.device).eval()
    size = sum(len(s) for s in genome.contigs.values())
    print(f"genome {Path(args.genome).name}: {size:,} nt, {len(genes)} CDS, "
          f"{len(plan.knockouts)} scorable; sample {len(sample)} genes")
    print(f"model {args.model or 'default'}, window {args.window}, both strands, device "
          f"{args.device}, {args.threads} torch threads, {args.workers} workers, "
          f"{platform.processor() or platform.machine()}, load {os.getloadavg()[0]:.1f}")
    modes = args.modes.split(",")
    results = {}
    with ModelWorkers(model, args.workers) as pool:
        score_knockouts(sample[:1], model, device=args.device, workers=pool)  # warm-up
        for mode in modes:
            scores, seconds, genes_scored = run_mode(mode, plan, sample, model, args, pool)
            results[mode] = {"scores": scores, "seconds": seconds, "genes": genes_scored}
            rate = genes_scored / seconds
            print(f"  {mode:16s} {genes_scored:5d} genes in {seconds:8.1f} s = {rate:7.3f} "
                  f"genes/s (whole genome ~{len(plan.knockouts) / rate / 60:.1f} min)", flush=True)
    first = modes[0]
    reference = results.get("exact", {}).get("scores")
    kind = "CPU" if args.device == "cpu" and args.workers == 1 else "wall"
    print(f"\n({kind} seconds)")
    print(f"| mode | genes/s | speed-up vs {first} | Spearman vs exact | max abs diff |")
    print("|---|---|---|---|---|")
    base = results[first]["genes"] / results[first]["seconds"]
    for mode, r in results.items():
        rate = r["genes"] / r["seconds"]
        if reference is not None and mode != "exact":
            diff = np.abs(np.array(r["scores"]) - np.array(reference))
            fidelity = f"{spearman(r['scores'], reference):.4f} | {diff.max():.3g}"
        else:
            fidelity = "1 | 0" if mode == "exact" else "– | –"
        print(f"| {mode} | {rate:.3f} | {rate / base:.2f}x | {fidelity} |")
    if args.json:
        meta = {k: v for k, v in vars(args).items() if k != "json"}
        keys = [f"{k.gene.contig}:{k.gene.start}" for k in sample]
        Path(args.json).write_text(json.dumps({"args": meta, "genes": keys, "modes": results}))


if __name__ == "__main__":
    main()
