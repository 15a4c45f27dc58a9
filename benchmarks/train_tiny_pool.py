"""A few hundred steps of dnahnet-tiny on a subset of the shared genome pool.

Prepares 1,024-nt fragments of a handful of bacterial genomes (split by genome: the
validation genomes are never trained on), trains with `dnahnet train`'s library entry
point, and prints how validation bits per nucleotide and the per-stage compression
ratios evolve. Writes the run (metrics.jsonl, curves.png, model) under --work.

    .venv/bin/python benchmarks/train_tiny_pool.py [--pool ../shared/data/pool] [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

GENOMES = ["H.Pylori_G27.fna.gz", "H.Pylori_ELS37.fna.gz", "S.Aureus_COL.fna.gz",
           "S.Aureus_N315.fna.gz", "V.Cholerae_H1.fna.gz", "phage_lambda_NC_001416.1.fna.gz"]


def prepare(pool: Path, out: Path, length: int) -> Path:
    """Try split seeds until both train and val hold genomes (splits are by genome hash)."""
    files = [str(pool / name) for name in GENOMES if (pool / name).exists()]
    if len(files) < 3:
        sys.exit(f"{pool}: expected the genomes {GENOMES}")
    for seed in range(50):
        subprocess.run([sys.executable, "-m", "dnahnet_cli", "prepare", *files, "--out", str(out),
                        "--fragment-length", str(length), "--val-fraction", "0.25",
                        "--test-fraction", "0", "--seed", str(seed), "--overwrite"],
                       check=True, capture_output=True)
        splits = json.loads((out / "manifest.json").read_text())["splits"]
        if splits["train"]["genomes"] >= 2 and splits["val"]["genomes"] >= 1:
            print(f"prepared {out}: split seed {seed}, train {splits['train']['genomes']} "
                  f"genomes / {splits['train']['fragments']} fragments, val "
                  f"{splits['val']['genomes']} genomes / {splits['val']['fragments']} fragments")
            return out
    sys.exit("no split seed gave both train and val genomes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, default=Path("../shared/data/pool"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/dnahnet_train_tiny_pool"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--fragment-length", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()

    from dnahnet_core.train import resolve_options, train
    from dnahnet_core.train.plots import plot_runs

    data = prepare(args.pool, args.work / "data", args.fragment_length)
    run = args.work / "run"
    if run.exists():
        import shutil

        shutil.rmtree(run)
    options = resolve_options(
        dict(data=str(data), config="dnahnet-tiny", out=str(run), max_steps=args.steps,
             batch_size=args.batch_size, lr=args.lr, log_every=10, eval_every=50,
             eval_fragments=128, save_every=100, device="cpu"),
        resume=False,
    )
    start = time.perf_counter()
    result = train(options, show_progress=False)
    wall = time.perf_counter() - start
    plot_runs([run], run / "curves.png")

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if r["kind"] == "val"]
    trains = [r for r in records if r["kind"] == "train"]
    print(f"\n{result.step} steps in {wall:.0f} s "
          f"({sum(r['nt_per_s'] for r in trains) / len(trains):,.0f} nt/s mean)")
    print("| step | val bpb | val L/L' stage 0 (target 3) | stage 1 (target 2) |")
    print("|---:|---:|---:|---:|")
    for r in val:
        print(f"| {r['step']} | {r['bpb']:.4f} | {r['compression_0']:.2f} | "
              f"{r['compression_1']:.2f} |")
    print("train records (every 50 steps): step, bpb, L/L' per stage, mean boundary prob")
    for r in trains[4::5]:
        print(f"  {r['step']:>4} bpb {r['bpb']:.4f}  L/L' {r['compression_0']:.2f} / "
              f"{r['compression_1']:.2f}  G {r['mean_prob_0']:.3f} / {r['mean_prob_1']:.3f}")


if __name__ == "__main__":
    main()
