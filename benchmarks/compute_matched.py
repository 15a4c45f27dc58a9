"""Compute-matched comparison: dnaHNet vs Transformer++ vs Mamba2 at equal training FLOPs.

Every model trains on the same prepared data (the same fragments in the same order: the
order depends only on --seed and the dataset) for the same training-FLOPs budget, counted
with the model's own analytic accounting (``dnahnet_core.model.flops``: forward FLOPs per
nucleotide at the fragment length; dnaHNet's at its target compression ratios, which the
ratio loss holds it to; the measured compression is reported beside):

    training FLOPs per nucleotide = 3 x forward FLOPs per nucleotide   (backward ~ 2 x forward)
    FLOPs per step                = that x batch size x fragment length
    steps                         = round(budget / FLOPs per step), at least 1

so every run stops within half a step of the budget (``dnahnet train --max-steps``). Then
``dnahnet evaluate`` (validation bits per nucleotide) and ``dnahnet check-model`` (the
zero-shot checks: codon periodicity of the boundaries, SNV classes, bits per nucleotide on
an annotated genome) run on each model. Everything goes through the CLI as subprocesses.

Outputs in --out: ``runs/NAME/`` (each training run), ``checks/NAME.json`` (check-model
reports), ``logs/``, ``compute_matched.json``, ``compute_matched.md`` (the table) and
``val_bpb_vs_flops.png`` (validation bits/nt against training FLOPs, one line per model).

    python benchmarks/compute_matched.py --genomes ../shared/data/pool/*.fna.gz \\
        --budget 3e13 --out /tmp/compute_matched
    python benchmarks/compute_matched.py --data PREPARED --budget 2e10 --out /tmp/cm_ci \\
        --models dnahnet-tiny,tiny_transformer.json,tiny_mamba2.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_MODELS = "dnahnet-small,transformer-small,mamba2-small"
DEFAULT_CHECK = (
    REPO / "dnahnet_core" / "demo_data" / "mycoplasma_alvi.fna.gz",
    REPO / "dnahnet_core" / "demo_data" / "mycoplasma_alvi.gff.gz",
)
TRAIN_FLOPS_PER_FORWARD = 3  # forward + backward (about twice the forward)
COLUMNS = [
    "model", "parameters", "forward MFLOP/nt", "steps", "nt trained", "training FLOPs",
    "val bits/nt", "stage-1 periodicity [95% CI]", "nonsense vs syn AUROC",
    "missense vs syn AUROC", "check bits/nt", "train s",
]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="A prepared dataset (dnahnet prepare).")
    source.add_argument("--genomes", type=Path, nargs="+", help="FASTA files to prepare.")
    parser.add_argument("--budget", type=float, required=True,
                        help="Training FLOPs per model, e.g. 3e13.")
    parser.add_argument("--models", default=DEFAULT_MODELS,
                        help=f"Comma-separated presets or config.json paths ({DEFAULT_MODELS}).")
    parser.add_argument("--out", type=Path, required=True, help="Output directory (new).")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads per process.")
    parser.add_argument("--batch-size", type=int, default=8, help="Fragments per step.")
    parser.add_argument("--seed", type=int, default=0, help="Weights and data order.")
    parser.add_argument("--fragment-length", type=int, default=2048,
                        help="With --genomes: fragment length to prepare.")
    parser.add_argument("--eval-points", type=int, default=8,
                        help="Validations per run (points of the plot).")
    parser.add_argument("--eval-fragments", type=int, default=64,
                        help="Validation fragments per evaluation.")
    parser.add_argument("--train-args", default="",
                        help="More `dnahnet train` options for every model, e.g. '--lr 2e-3'.")
    parser.add_argument("--check-genome", type=Path, default=DEFAULT_CHECK[0],
                        help="Annotated genome for check-model (default: bundled Mycoplasma).")
    parser.add_argument("--check-annotation", type=Path, default=DEFAULT_CHECK[1],
                        help="Its GFF3/GenBank ('' when --check-genome carries it).")
    parser.add_argument("--check-args", default="",
                        help="More check-model options, e.g. '--snvs 50 --max-bases 65536'.")
    parser.add_argument("--no-checks", action="store_true", help="Skip check-model.")
    args = parser.parse_args(argv)
    if args.budget <= 0:
        parser.error(f"--budget {args.budget}: must be > 0")
    if args.threads < 1 or args.batch_size < 1 or args.eval_points < 1:
        parser.error("--threads, --batch-size and --eval-points must be >= 1")
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out}: exists and is not empty (nothing is overwritten)")
    # the steps run with the repository as their working directory: paths from here
    for name in ("data", "out", "check_genome", "check_annotation"):
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).resolve())
    if args.genomes:
        args.genomes = [path.resolve() for path in args.genomes]
    return args


class Runner:
    """Runs `dnahnet ...` subprocesses with a thread count, logging each to logs/."""

    def __init__(self, out: Path, threads: int) -> None:
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "OMP_NUM_THREADS": str(threads),
                    "MKL_NUM_THREADS": str(threads)}

    def __call__(self, name: str, *args: str) -> tuple[str, float]:
        command = [sys.executable, "-m", "dnahnet_cli", *args]
        log = self.logs / f"{name}.log"
        started = time.perf_counter()
        run = subprocess.run(command, env=self.env, cwd=REPO, capture_output=True, text=True,
                             check=False)
        seconds = time.perf_counter() - started
        log.write_text(f"$ {shlex.join(command)}\n{run.stderr}")
        if run.returncode != 0:
            tail = "\n".join(run.stderr.splitlines()[-5:])
            sys.exit(f"compute_matched: `dnahnet {args[0]}` failed (exit {run.returncode}); "
                     f"log: {log}\n{tail}")
        return run.stdout, seconds


def prepare(genomes: list[Path], out: Path, fragment_length: int, runner: Runner) -> Path:
    """`dnahnet prepare` with split seeds tried until train and val both hold genomes."""
    data = out / "data"
    for seed in range(50):
        runner("prepare", "prepare", *map(str, genomes), "--out", str(data),
               "--fragment-length", str(fragment_length), "--val-fraction", "0.15",
               "--test-fraction", "0", "--seed", str(seed), "--overwrite")
        splits = json.loads((data / "manifest.json").read_text())["splits"]
        if splits["train"]["genomes"] and splits["val"]["genomes"]:
            return data
    sys.exit("compute_matched: no split seed put genomes in both train and val; give more "
             "--genomes or a prepared --data")


def plan(models: list[str], budget: float, fragment_length: int, batch_size: int) -> list[dict]:
    """Steps per model so that each run's training FLOPs land within half a step of budget."""
    from dnahnet_core.model import build_model, load_config
    from dnahnet_core.model.flops import flops_per_nucleotide

    plans = []
    for spec in models:
        config = load_config(spec)
        model = build_model(config)
        forward = flops_per_nucleotide(model, fragment_length)["total"]
        per_step = TRAIN_FLOPS_PER_FORWARD * forward * batch_size * fragment_length
        steps = max(1, round(budget / per_step))
        plans.append({
            "model": config.name, "config": spec,
            "parameters": sum(p.numel() for p in model.parameters()),
            "stages": config.num_stages,
            "forward_flops_per_nt": forward,
            "training_flops_per_nt": TRAIN_FLOPS_PER_FORWARD * forward,
            "flops_per_step": per_step, "steps": steps,
        })
    names = [p["model"] for p in plans]
    if len(set(names)) != len(names):
        sys.exit(f"compute_matched: two models share a name ({', '.join(names)})")
    return plans


def read_records(run: Path) -> list[dict]:
    with open(run / "metrics.jsonl") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main(argv=None) -> None:
    args = parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    runner = Runner(out, args.threads)
    data = args.data or prepare(args.genomes, out, args.fragment_length, runner)

    from dnahnet_core.data.dataset import FragmentDataset
    from dnahnet_core.data.markov import split_baselines

    fragment_length = FragmentDataset(data, "train").fragment_length
    plans = plan([m.strip() for m in args.models.split(",") if m.strip()], args.budget,
                 fragment_length, args.batch_size)
    check = [] if args.no_checks else ["--genome", str(args.check_genome)] + (
        ["--annotation", str(args.check_annotation)] if str(args.check_annotation) else [])
    for p in plans:
        name, run = p["model"], out / "runs" / p["model"]
        every = max(1, p["steps"] // args.eval_points)
        print(f"{name}: {p['steps']} steps of {args.batch_size} x {fragment_length} nt, "
              f"{p['flops_per_step']:.3g} FLOPs/step", flush=True)
        _, p["train_seconds"] = runner(
            f"train-{name}", "train", "--data", str(data), "--config", p["config"],
            "--out", str(run), "--max-steps", str(p["steps"]),
            "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--device", "cpu",
            "--eval-every", str(every), "--eval-fragments", str(args.eval_fragments),
            "--log-every", str(every), "--save-every", str(p["steps"]), "--keep", "1",
            *shlex.split(args.train_args))
        records = read_records(run)
        last = [r for r in records if r.get("kind") == "train"][-1]
        p["steps_done"] = last["step"]
        p["tokens"] = last["tokens"]
        p["training_flops"] = last["tokens"] * p["training_flops_per_nt"]
        p["curve"] = [
            {"training_flops": r["tokens"] * p["training_flops_per_nt"], "bpb": r["bpb"],
             "step": r["step"]}
            for r in records if r.get("kind") == "val"
        ]
        stdout, _ = runner(f"evaluate-{name}", "evaluate", "--model", str(run), "--data",
                           str(data), "--split", "val", "--max-fragments",
                           str(args.eval_fragments), "--device", "cpu", "--json")
        p["val"] = json.loads(stdout.strip().splitlines()[-1])
        if check:
            report = out / "checks" / f"{name}.json"
            report.parent.mkdir(exist_ok=True)
            _, p["check_seconds"] = runner(
                f"check-{name}", "check-model", "--model", str(run), *check, "--device", "cpu",
                "-o", str(report), *shlex.split(args.check_args))
            p["check"] = json.loads(report.read_text())
    baselines = split_baselines(data, "val", args.eval_fragments)  # what evaluate scores
    result = {
        "budget": args.budget,
        "flops_rule": f"training FLOPs = {TRAIN_FLOPS_PER_FORWARD} x forward FLOPs per nt "
        f"(dnahnet_core.model.flops at L = {fragment_length}, target ratios) x nt trained; "
        "steps = round(budget / FLOPs per step)",
        "data": str(data), "fragment_length": fragment_length, "batch_size": args.batch_size,
        "models": plans, "val_baselines": baselines,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {args.threads} thread(s), "
        f"torch {_torch_version()}",
        "command": shlex.join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
    }
    (out / "compute_matched.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "compute_matched.md").write_text(table(result))
    plot(result, out / "val_bpb_vs_flops.png")
    print(table(result), end="")


def _torch_version() -> str:
    import torch

    return torch.__version__


def _cell(value, digits=3) -> str:
    if value is None:
        return "–"
    if value == "inf":
        return "inf"
    return f"{value:.{digits}f}"


def _check_cells(check: dict | None) -> list[str]:
    if check is None:
        return ["–"] * 4
    stages = check.get("boundaries") or []
    period = "– (no stages)"
    if stages:
        ci = stages[0]["periodicity_ci95"]
        period = _cell(stages[0]["periodicity"], 2) + (
            f" [{_cell(ci[0], 2)}, {_cell(ci[1], 2)}]" if ci else "")
    auroc = (check.get("snvs") or {}).get("auroc", {})

    def a(name):
        v = auroc.get(name)
        return "–" if v is None else _cell(v["auroc"]) + (
            f" [{_cell(v['ci95'][0], 2)}, {_cell(v['ci95'][1], 2)}]" if v["ci95"] else "")

    bits = (check.get("bits_per_nucleotide") or {}).get("model")
    return [period, a("nonsense_vs_synonymous"), a("missense_vs_synonymous"), _cell(bits, 4)]


def table(result: dict) -> str:
    from dnahnet_core.data.markov import highest_markov

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for p in result["models"]:
        cells = [p["model"], f"{p['parameters'] / 1e6:.2f} M",
                 f"{p['forward_flops_per_nt'] / 1e6:.2f}", str(p["steps_done"]),
                 f"{p['tokens']:,}", f"{p['training_flops']:.3g}", _cell(p["val"]["bpb"], 4),
                 *_check_cells(p.get("check")), f"{p['train_seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    base = result["val_baselines"]
    markov, order = highest_markov(base)
    checks = [p["check"] for p in result["models"] if p.get("check")]
    check_base = ["1.00", "0.5", "0.5", "2.0"]
    if checks:
        c = checks[0]
        snv = (c.get("snvs") or {}).get("auroc", {})
        bits = c.get("bits_per_nucleotide") or {}
        check_base = [
            "1.00 (no codon signal)",
            "0.5; Markov " + _cell((snv.get("nonsense_vs_synonymous") or {}).get("markov_auroc")),
            "0.5; Markov " + _cell((snv.get("missense_vs_synonymous") or {}).get("markov_auroc")),
            "2.0; Markov " + _cell(bits.get(markov), 4),
        ]
    lines.append("| trivial baselines | | | | | | 2.0 uniform; order-"
                 f"{order} Markov {_cell(base[markov], 4)} | "
                 + " | ".join(check_base) + " | |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    from dnahnet_core.data.markov import highest_markov

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for p in result["models"]:
        xs = [c["training_flops"] for c in p["curve"]]
        ys = [c["bpb"] for c in p["curve"]]
        axes.plot(xs, ys, marker="o", label=f"{p['model']} ({p['parameters'] / 1e6:.2f} M)")
    markov, order = highest_markov(result["val_baselines"])
    axes.axhline(2.0, color="grey", linestyle=":", label="uniform (2 bits)")
    axes.axhline(result["val_baselines"][markov], color="grey", linestyle="--",
                 label=f"order-{order} Markov")
    axes.axvline(result["budget"], color="black", linewidth=0.8)
    axes.set_xlabel("training FLOPs (3 x analytic forward FLOPs x nt)")
    axes.set_ylabel("validation bits per nucleotide")
    axes.set_title(f"compute-matched, budget {result['budget']:.3g} FLOPs")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
