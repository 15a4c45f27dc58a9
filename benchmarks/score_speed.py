#!/usr/bin/env python
"""score-variants throughput: the engine (prefix reuse) vs the naive two-full-windows method.

SNV-dense input: ``--positions`` consecutive positions of the bundled Mycoplasma alvi
genome (contig NZ_JNJU01000001.1 from 100,001), each with ``--alts`` alternative bases
(3 = saturation mutagenesis, one multi-allelic record per position; 1 = one SNV per
position). Both methods run the whole ``score_vcf`` pipeline (VCF in, TSV out) with the
same model, window and batch size; the script checks that they give the same LLRs and
reports ALT alleles per second (wall clock and per CPU-second of this process) and the
number of nucleotide positions sent through the model (independent of machine load).
The two methods run interleaved ``--repeat`` times; the best time of each is kept. One
torch thread by default: on a shared machine a single thread's CPU time is the steadiest
measure (with several threads, OpenMP spin-waiting inflates CPU time under contention).

    .venv/bin/python benchmarks/score_speed.py [--model dnahnet-small] [--window 2048]
        [--positions 16] [--alts 3] [--batch-size 8] [--threads 1] [--repeat 2]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dnahnet_core.io.fasta import load_genome
from dnahnet_core.model import load_model
from dnahnet_core.tasks.variants import ScoreOptions, score_vcf

DEMO = Path(__file__).resolve().parents[1] / "dnahnet_core" / "demo_data"
GENOME = DEMO / "mycoplasma_alvi.fna.gz"
CONTIG, START = "NZ_JNJU01000001.1", 100_000


def write_vcf(path: Path, positions: int, alts: int) -> int:
    seq = load_genome(GENOME)[CONTIG]
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    for pos in range(START, START + positions):
        ref = seq[pos]
        choices = [b for b in "ACGT" if b != ref][:alts]
        lines.append(f"{CONTIG}\t{pos + 1}\t.\t{ref}\t{','.join(choices)}\t.\t.\t.")
    path.write_text("\n".join(lines) + "\n")
    return positions * alts


def run(
    model, vcf: Path, out: Path, options: ScoreOptions, device: str
) -> tuple[float, float, int]:
    counter = {"positions": 0}
    hook = model.register_forward_pre_hook(
        lambda _m, args, kwargs: counter.__setitem__(
            "positions", counter["positions"] + args[0].numel()
        ),
        with_kwargs=True,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    score_vcf(vcf, GENOME, out, model, options=options, device=device)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    hook.remove()
    return wall, cpu, counter["positions"]


def llrs(path: Path) -> np.ndarray:
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:]]
    return np.array([float(r[4]) for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="dnahnet-small")
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--positions", type=int, default=16)
    parser.add_argument("--alts", type=int, default=3, choices=[1, 2, 3])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-reverse-complement", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = load_model(args.model, device=args.device).eval()
    rc = not args.no_reverse_complement
    print(
        f"model {args.model}, window {args.window}, batch {args.batch_size}, "
        f"{args.threads} threads, device {args.device}, reverse complement {rc}, "
        f"{platform.processor() or platform.machine()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = write_vcf(tmp / "in.vcf", args.positions, args.alts)
        print(f"{args.positions} positions x {args.alts} ALT = {n} SNVs")
        # warm-up (allocations, first-call overheads)
        write_vcf(tmp / "warm.vcf", 1, 1)
        run(
            model,
            tmp / "warm.vcf",
            tmp / "warm.tsv",
            ScoreOptions(window=args.window, batch_size=args.batch_size),
            args.device,
        )
        results: dict[bool, list] = {False: [], True: []}
        for _ in range(args.repeat):  # interleaved, so both see the same machine load
            for naive in (False, True):
                options = ScoreOptions(
                    window=args.window,
                    batch_size=args.batch_size,
                    prefix_reuse=not naive,
                    reverse_complement=rc,
                )
                out = tmp / f"out_{naive}.tsv"
                wall, cpu, positions = run(model, tmp / "in.vcf", out, options, args.device)
                results[naive].append((wall, cpu, positions, llrs(out)))
        best = {}
        for naive, runs in results.items():
            wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
            positions, values = runs[0][2], runs[0][3]
            best[naive] = (wall, cpu, positions, values)
            name = "naive (2 full windows)" if naive else "engine (prefix reuse)"
            print(
                f"{name:24s} {n / wall:7.3f} SNV/s wall, {n / cpu:7.3f} SNV/CPU-s, "
                f"{positions:,} positions (best of {len(runs)}: {wall:.1f} s wall, "
                f"{cpu:.1f} s CPU)"
            )
    fast, slow = best[False], best[True]
    diff = float(np.abs(fast[3] - slow[3]).max())
    print(
        f"speed-up: {slow[0] / fast[0]:.2f}x wall, {slow[1] / fast[1]:.2f}x CPU time, "
        f"{slow[2] / fast[2]:.2f}x fewer positions; max |LLR difference| {diff:.2e} "
        "(TSV values are rounded to 1e-4)"
    )


if __name__ == "__main__":
    main()
