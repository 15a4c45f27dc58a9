"""Throughput and peak memory of `dnahnet segments` (library path, BED + bedGraph text).

    .venv/bin/python benchmarks/segments_speed.py --model dnahnet-small --length 65536
    .venv/bin/python benchmarks/segments_speed.py --fasta genome.fa --model dnahnet-tiny \
        --modes previous,exact,bf16 --workers 2

Every mode segments the same genome one after the other in this process (model +
stitching + formatting of BED and per-stage bedGraph, written to /dev/null); the last
line is JSON: Mbp/min per mode (CPU time of this process with one worker on a CPU, wall
clock otherwise), the speed-up over the first mode, and the peak resident
memory (ru_maxrss of this process and of its worker processes). Modes: ``previous``
(batches of 4 tiles, the batch size before issue 12), ``exact`` (the command's defaults:
the engine's batch, ``--stride`` 262,144 unless given), ``bf16`` (bf16 autocast),
``batch:N``, ``stride:N`` (tiles of context + N, each keeping N bases: every base still
has at least ``--context`` of left context), and modes joined with ``+``
(``stride:262144+bf16``). ``--workers`` applies to every mode.
Fidelity against the first mode, per stage: the share of bases whose boundary call
differs, and the largest difference of boundary probability.
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
    parser.add_argument("--modes", default="exact")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from dnahnet_core.io.fasta import load_genome
    from dnahnet_core.io.tracks import iter_bedgraph, iter_segments_bed
    from dnahnet_core.model import load_model
    from dnahnet_core.tasks.engine import ModelWorkers, default_batch_size
    from dnahnet_core.tasks.segments import DEFAULT_STRIDE, segment_genome

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
    model = load_model(args.model, device=args.device)
    rates, fidelity, first_calls = {}, {}, None
    with ModelWorkers(model, args.workers) as pool:
        for mode in args.modes.split(","):
            parts = dict(part.partition(":")[::2] for part in mode.split("+"))
            batch = 4 if "previous" in parts else int(
                parts.get("batch") or default_batch_size(torch.device(args.device))
            )
            precision = "bf16" if "bf16" in parts else "fp32"
            stride = int(parts["stride"]) if "stride" in parts else args.stride
            calls = []
            clock = (time.process_time if args.device == "cpu" and args.workers == 1
                     else time.perf_counter)  # CPU time: steady on a loaded machine
            started = clock()
            with open(os.devnull, "w") as sink:
                for contig in segment_genome(
                    model, genome, context=args.context, stride=stride, batch_size=batch,
                    device=args.device, precision=precision, workers=pool,
                ):
                    sink.writelines(iter_segments_bed(contig))
                    for row in range(len(contig.stages)):
                        sink.writelines(iter_bedgraph(contig.name, contig.prob[row]))
                    calls.append((contig.mask, contig.prob))
            seconds = clock() - started
            rates[mode] = round(total / 1e6 / (seconds / 60), 4)
            first_calls = first_calls or calls
            fidelity[mode] = {
                f"stage{k + 1}": {
                    "calls_differing": float(np.mean(np.concatenate(
                        [(m[k] != m0[k]) for (m, _), (m0, _) in zip(calls, first_calls)]))),
                    "max_abs_prob_diff": float(max(
                        np.abs(p[k] - p0[k]).max() for (_, p), (_, p0) in zip(calls, first_calls))),
                }
                for k in range(len(calls[0][0]))
            }
            print(f"{mode}: {seconds:.1f} s, {rates[mode]} Mbp/min, vs the first mode "
                  f"{fidelity[mode]}", file=sys.stderr, flush=True)
    first = next(iter(rates.values()))
    peak = max(resource.getrusage(who).ru_maxrss
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    print(json.dumps({
        "model": args.model, "genome_nt": total, "contigs": len(genome),
        "context": args.context, "stride": args.stride or DEFAULT_STRIDE,
        "threads": torch.get_num_threads(), "workers": args.workers, "device": args.device,
        "mbp_per_min": rates, "speed_up": {m: round(r / first, 2) for m, r in rates.items()},
        "fidelity": fidelity,
        "peak_rss_mib": round(peak, 1), "load": round(os.getloadavg()[0], 1),
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
