#!/usr/bin/env python
"""Essentiality throughput (genes/s), with and without prefix reuse.

The genome is the bundled 0.84 Mbp Mycoplasma alvi draft (FASTA + RefSeq GFF3, 686
CDS); every CDS is planned (windows + cassettes), then an evenly spaced sample of
``--genes`` scorable genes is scored with ``--model`` (weights do not change the
speed; a preset name builds an untrained model). Both strands, as the CLI defaults.

    .venv/bin/python benchmarks/essentiality_speed.py [--genes 8] [--model dnahnet-small]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from dnahnet_core.io.annotations import load_annotated_genome
from dnahnet_core.model import load_model
from dnahnet_core.tasks.essentiality import score_knockouts
from dnahnet_core.tasks.knockouts import plan_knockouts

DEMO = Path(__file__).resolve().parents[1] / "dnahnet_core" / "demo_data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="dnahnet-small")
    parser.add_argument("--genes", type=int, default=8)
    parser.add_argument("--window", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    genome = load_annotated_genome(DEMO / "mycoplasma_alvi.fna.gz", DEMO / "mycoplasma_alvi.gff.gz")
    genes = genome.features_of("CDS")
    plan = plan_knockouts(genome, genes, window=args.window, offset=12)
    prepared = time.perf_counter() - started
    step = max(1, len(plan.knockouts) // args.genes)
    sample = plan.knockouts[::step][: args.genes]
    model = load_model(args.model, device=args.device).eval()
    size = sum(len(s) for s in genome.contigs.values())
    print(f"genome {size:,} nt, {len(genes)} CDS, {len(plan.knockouts)} scorable, "
          f"{len(plan.skipped)} skipped; load + plan {prepared:.2f} s")
    print(f"model {args.model}, window {args.window}, batch {args.batch_size}, "
          f"{args.threads} threads, device {args.device}, {platform.processor() or 'cpu'}")
    score_knockouts(sample[:1], model, device=args.device, batch_size=args.batch_size,
                    reverse_complement=False)  # warm-up (allocator, kernels)
    rates = {}
    for reuse in (False, True):
        t0, c0 = time.perf_counter(), time.process_time()
        score_knockouts(sample, model, device=args.device, batch_size=args.batch_size,
                        prefix_reuse=reuse)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        rates[reuse] = len(sample) / seconds
        whole = len(plan.knockouts) / rates[reuse] / 60
        print(f"prefix reuse {'on ' if reuse else 'off'}: {len(sample)} genes in {seconds:.1f} s "
              f"= {rates[reuse]:.3f} genes/s, CPU time {cpu / len(sample):.1f} s/gene "
              f"(whole genome ~{whole:.0f} min)")
    print(f"speed-up from prefix reuse: {rates[True] / rates[False]:.2f}x")


if __name__ == "__main__":
    main()
