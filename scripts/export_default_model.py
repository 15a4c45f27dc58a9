"""Export a training run as the packaged default model, with a measured model card.

    python scripts/export_default_model.py RUNDIR --data PREPARED [--fragments 64]
        [--command "how the run was trained"] [--compute "what it ran on"]
        [--checks CHECK.json [--checks-before BEFORE.json]]

Writes dnahnet_core/default_model/: config.json, model.safetensors (float16 to stay
under 25 MB; loaded as float32), metadata.json and MODEL_CARD.md. Validation and test
bits per nucleotide and the compression ratios are measured here, on the dataset the
run was trained from (splits by genome), with the float16-rounded weights.
``--checks``: the JSON report of ``dnahnet check-model`` on a held-out genome (and
``--checks-before``: the previous default's on the same genome), tabled in the card.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
from pathlib import Path

import torch

from dnahnet_core.data.dataset import FragmentDataset
from dnahnet_core.data.markov import split_baselines
from dnahnet_core.model import default_model_dir, load_model, save_model
from dnahnet_core.train.evaluate import evaluate_split


def measure(model, data: Path, split: str, fragments: int) -> dict:
    dataset = FragmentDataset(data, split=split)
    result = evaluate_split(model, dataset, batch_size=2, max_fragments=fragments)
    return {**result, "baselines": split_baselines(data, split, fragments)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--fragments", type=int, default=64, help="fragments per split measured")
    parser.add_argument("--command", help="the training command(s), for the card")
    parser.add_argument("--compute", help="what the run ran on, for the card")
    parser.add_argument("--checks", type=Path, help="check-model JSON of this model")
    parser.add_argument("--checks-before", type=Path, help="check-model JSON of the previous one")
    args = parser.parse_args()

    run_options = json.loads((args.run / "run.json").read_text())
    metrics = [json.loads(line) for line in (args.run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [m for m in metrics if m.get("kind") == "train"]
    last = train_rows[-1]
    # the weights' own step (a run stopped by a signal saves after its last log line)
    saved = args.run / "metadata.json"
    weights = json.loads(saved.read_text()) if saved.exists() else {}
    trained = {key: weights.get(key, last[key]) for key in ("step", "tokens")}
    manifest = json.loads((args.data / "manifest.json").read_text())

    with tempfile.TemporaryDirectory() as tmp:
        save_model(load_model(args.run), tmp, dtype=torch.float16)
        model = load_model(tmp)
        results = {
            split: measure(model, args.data, split, args.fragments) for split in ("val", "test")
            if manifest["splits"].get(split, {}).get("fragments")  # a split may be empty
        }
        target = default_model_dir()
        if target.exists():
            shutil.rmtree(target)
        metadata = {
            "name": f"{model.config.name} default model",
            "trained_from": str(args.run),
            "steps": trained["step"],
            "tokens": trained["tokens"],
            "train_options": run_options,
            "evaluation": results,
            "weights_dtype": "float16 (loaded as float32)",
        }
        save_model(model, target, metadata=metadata, dtype=torch.float16)
    shutil.copyfile(args.data / "manifest.json", target / "training_data_manifest.json")
    shutil.copyfile(args.run / "metrics.jsonl", target / "training_metrics.jsonl")
    card = model_card(model, run_options, trained, last, results, manifest, args.fragments,
                      metrics,
                      command=args.command or default_command(run_options),
                      compute=args.compute or DEFAULT_COMPUTE)
    if args.checks:
        before = json.loads(args.checks_before.read_text()) if args.checks_before else None
        card += checks_section(json.loads(args.checks.read_text()), before, manifest)
    (target / "MODEL_CARD.md").write_text(card)
    print(card)


def _stage_text(result: dict) -> str:
    parts = []
    for key, value in sorted(result.items()):
        if key.startswith("compression_"):
            parts.append(f"stage {int(key.split('_')[1]) + 1}: L/L' = {value:.2f}")
    return "; ".join(parts)


DEFAULT_COMPUTE = (f"CPU only, 1 thread of a 2-core {platform.machine()} machine shared with "
                   "other work; no GPU was available to this project session.")


def default_command(options: dict) -> str:
    length = (f"--max-steps {options['max_steps']}" if options.get("max_steps")
              else f"--tokens {options['tokens']:.3g}")
    return (f"dnahnet train --config {options['config']} {length} --batch-size "
            f"{options['batch_size']} --grad-accum {options.get('grad_accum', 1)} --lr "
            f"{options['lr']} --warmup {options['warmup']} --ratio-loss-weight "
            f"{options['ratio_loss_weight']} --precision {options.get('precision', 'fp32')}"
            + (" --compile" if options.get("compile") else "") + f" --seed {options['seed']}")


def _periodicity(report: dict, stage: int) -> str:
    for b in report["boundaries"]:
        if b["stage"] == stage:
            low, high = b["periodicity_ci95"]
            return f"{b['periodicity']:.2f} [{low:.2f}, {high:.2f}]"
    return "–"


def _auroc(report: dict, name: str) -> str:
    value = report["snvs"]["auroc"][name]
    low, high = value["ci95"]
    return f"{value['auroc']:.3f} [{low:.2f}, {high:.2f}]"


def checks_section(report: dict, before: dict | None, manifest: dict) -> str:
    """The check-model numbers (issue 15 section 4) as a table, beside the previous default's
    and the baselines check-model prints."""
    trained_on = {Path(i["path"]).name for i in manifest.get("inputs", [])}
    genome = Path(report["inputs"][0]).name
    held_out = (f"{genome} is not among the training inputs (training_data_manifest.json)."
                if genome not in trained_on else
                f"{genome} is one of the training inputs: these checks are not held out.")
    bits = report["bits_per_nucleotide"]
    rows = [
        ("stage-1 codon periodicity in CDS (no codon signal: 1.00)", lambda r: _periodicity(r, 1)),
        ("stage-2 codon periodicity in CDS", lambda r: _periodicity(r, 2)),
        (f"bits per nt (uniform 2.0000, order-5 Markov {bits['markov_order_5']:.4f})",
         lambda r: f"{r['bits_per_nucleotide']['model']:.4f}"),
        ("AUROC nonsense vs synonymous (chance 0.5, Markov "
         f"{report['snvs']['auroc']['nonsense_vs_synonymous']['markov_auroc']:.3f})",
         lambda r: _auroc(r, "nonsense_vs_synonymous")),
        ("AUROC missense vs synonymous (chance 0.5, Markov "
         f"{report['snvs']['auroc']['missense_vs_synonymous']['markov_auroc']:.3f})",
         lambda r: _auroc(r, "missense_vs_synonymous")),
    ]
    head = "| check | this model |" + (" previous default |" if before else "")
    lines = [
        "",
        f"## Zero-shot checks (`dnahnet check-model`, {genome})",
        "",
        f"{held_out} "
        f"{report['sample']['windows']} windows of {report['sample']['window']:,} nt, "
        f"{report['snvs']['requested_per_class']} SNVs per class in "
        f"{report['snvs']['window']:,}-nt windows (seed {report['options']['seed']}).",
        "",
        head,
        "|---|---|" + ("---|" if before else ""),
    ]
    for label, value in rows:
        lines.append(f"| {label} | {value(report)} |" + (f" {value(before)} |" if before else ""))
    lines.append("")
    return "\n".join(lines)


def _cut_short(options: dict, trained: dict) -> str | None:
    """The planned length when the weights stop before it (None: the run finished)."""
    if options.get("max_steps"):
        short = trained["step"] < options["max_steps"]
        return f"{options['max_steps']} steps" if short else None
    if options.get("tokens") and trained["tokens"] < options["tokens"]:
        return f"{options['tokens']:,.0f} nucleotides"
    return None


def model_card(model, options, trained, last, results, manifest, fragments, metrics, *,
               command: str, compute: str) -> str:
    params = sum(p.numel() for p in model.parameters())
    cfg = model.config
    inputs = manifest.get("inputs", [])
    splits = manifest.get("splits", {})
    lines = [
        f"# dnahnet default model ({model.config.name})",
        "",
        f"Architecture: `{cfg.name}`, {params / 1e6:.2f} M parameters, layout `{cfg.arch_layout}`,",
        f"widths {cfg.d_model}, target compression ratios {cfg.target_ratios}.",
        "",
        "## Training",
        "",
        "- Data: `dnahnet prepare` on ../shared/data/pool (23 bacterial and phage genomes) "
        "plus the "
        f"annotated Mycoplasma alvi and phage VT2-Sakai genomes: {len(inputs)} input files, "
        f"fragments of {manifest.get('fragment_length')} nt, split by genome "
        f"(seed {manifest.get('seed', 0)}); per split: "
        + ", ".join(
            f"{k} {v.get('genomes')} genomes / {v.get('fragments')} fragments"
            for k, v in splits.items()
        )
        + ".",
        f"- Command: {command}",
        f"- Trained for **{trained['step']} steps, {trained['tokens']:,} nucleotides**"
        + (
            f" of {planned} planned: stopped at a checkpoint when the session's "
            f"time ran out, before the cosine schedule finished (last learning rate "
            f"{last['lr']:.2e}, its floor {options['lr'] * options['min_lr_ratio']:.2e})."
            if (planned := _cut_short(options, trained))
            else "."
        ),
        f"- Compute: {compute}",
        "- Last training log line: "
        f"bpb {last['bpb']:.3f}, "
        + ", ".join(
            f"stage {int(k.split('_')[1]) + 1} L/L' {v:.2f}"
            for k, v in last.items()
            if k.startswith("compression_")
        )
        + ".",
        "",
        "## Evaluation (float16-rounded weights, as shipped)",
        "",
        "| split | fragments | bits per nucleotide | order-0 / order-5 Markov (uniform 2.0) "
        "| compression |",
        "|---|---|---|---|---|",
    ]
    for split, result in results.items():
        base = result["baselines"]
        markov = (f"{base['markov_order_0']:.4f} / {base['markov_order_5']:.4f}" if base
                  else "–")
        lines.append(
            f"| {split} | {min(fragments, splits.get(split, {}).get('fragments', fragments))} "
            f"| {result['bpb']:.4f} | {markov} | {_stage_text(result)} |"
        )
    lines += ["", "The Markov chains are counted on a seeded sample of the training split "
              "(`dnahnet_core.data.markov.split_baselines`, as `dnahnet evaluate` prints) and "
              "scored on the same fragments as the model."]
    validation = [m for m in metrics if m.get("kind") == "val"]
    if validation:
        lines += [
            "",
            f"Validation during training ({options.get('eval_fragments', 16)} fragments each):",
            "",
            "| step | nucleotides seen | val bits per nt | stage 1 L/L' | stage 2 L/L' |",
            "|---|---|---|---|---|",
        ]
        for m in validation:
            lines.append(
                f"| {m['step']} | {m['tokens']:,} | {m['bpb']:.4f} | "
                f"{m.get('compression_0', float('nan')):.2f} | "
                f"{m.get('compression_1', float('nan')):.2f} |"
            )
    lines += [
        "",
        "Uniform guessing over A/C/G/T is 2 bits per nucleotide. This is a **small model "
        "trained briefly on a CPU**: it demonstrates the toolkit end to end; its scores are "
        "not those of the paper's models. Train a larger preset on GPUs with the workflow "
        "(`workflows/Snakefile`) for real use.",
        "",
        "Beside this card: `training_data_manifest.json` (the `dnahnet prepare` manifest: every "
        "input file with size and sha256, filters, split counts) and `training_metrics.jsonl` "
        "(the run's training and validation log).",
        "",
        "Reproduce: `scripts/export_default_model.py RUNDIR --data PREPARED` after the "
        "training command above (see docs/training.md).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
