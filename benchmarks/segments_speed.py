"""Throughput and peak memory of `dnahnet segments` (library path, BED + bedGraph text).

    .venv/bin/python benchmarks/segments_speed.py --model dnahnet-small --length 65536
    .venv/bin/python benchmarks/segments_speed.py --fasta genome.fa --model dnahnet-tiny

Prints one JSON line: Mbp/min of sequence segmented (model + stitching + formatting of
BED and per-stage bedGraph, written to /dev/null) and the peak resident memory of the
process (ru_maxrss, which includes the model weights and torch itself).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dnahnet-small")
    parser.add_argument("--fasta", help="genome FASTA (default: random sequence)")
    parser.add_argument("--length", type=int, default=65536, help="random genome length (nt)")
    parser.add_argument("--contigs", type=int, default=1, help="random genome: contigs")
    parser.add_argument("--context", type=int, default=8192)
    parser.add_argument("--stride", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from dnahnet_core.io.fasta import load_genome
    from dnahnet_core.io.tracks import iter_bedgraph, iter_segments_bed
    from dnahnet_core.model import load_model
    from dnahnet_core.tasks.segments import segment_genome

    if args.fasta:
        genome = load_genome(args.fasta)
    else:
        rng = np.random.default_rng(0)
        size = args.length // args.contigs
        genome = {
            f"contig{i}": "".join(rng.choice(list("ACGT"), size)) for i in range(args.contigs)
        }
    total = sum(len(s) for s in genome.values())
    torch.manual_seed(0)
    model = load_model(args.model)
    started = time.perf_counter()
    with open(os.devnull, "w") as sink:
        for contig in segment_genome(
            model, genome, context=args.context, stride=args.stride, batch_size=args.batch_size
        ):
            sink.writelines(iter_segments_bed(contig))
            for row in range(len(contig.stages)):
                sink.writelines(iter_bedgraph(contig.name, contig.prob[row]))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    print(json.dumps({
        "model": args.model, "genome_nt": total, "contigs": len(genome),
        "context": args.context, "stride": args.stride or args.context,
        "batch_size": args.batch_size, "threads": torch.get_num_threads(),
        "seconds": round(seconds, 2), "mbp_per_min": round(total / 1e6 / (seconds / 60), 4),
        "peak_rss_mib": round(peak, 1),
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
