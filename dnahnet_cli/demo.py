"""`dnahnet demo`: the whole toolkit on the bundled genomes, one real command at a time.

Each step is the dnahnet command line a user would type (printed before it runs), so
the demo doubles as a tour. Outputs land in --out; a summary table ends the run.
"""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli.validate import output_dir, up_to_cpus


def demo_steps(out: Path, data: Path) -> list[tuple[str, list[str], list[Path]]]:
    """(title, dnahnet arguments, files it writes) for every step of the demo."""
    from dnahnet_core.model.config import WEIGHTS
    from dnahnet_core.train.metrics import METRICS

    genome = data / "mycoplasma_alvi.fna.gz"
    phage, phage_gff = data / "phage_vt2_sakai.fna.gz", data / "phage_vt2_sakai.gff.gz"
    prepared, run = out / "prepared", out / "tiny_run"
    seg = out / "segments"
    return [
        (
            "prepare training fragments from the bundled genomes",
            [
                "prepare",
                str(genome),
                str(phage),
                "--out",
                str(prepared),
                "--fragment-length",
                "1024",
                "--val-fraction",
                "0.5",
                "--test-fraction",
                "0",
                "--seed",
                "3",  # splits go by genome: this seed trains on M. alvi, validates on VT2
                "--overwrite",
            ],
            [prepared / "manifest.json"],
        ),
        (
            "train a tiny model for 60 steps (training works on a CPU)",
            [
                "train",
                "--data",
                str(prepared),
                "--config",
                "dnahnet-tiny",
                "--out",
                str(run),
                "--max-steps",
                "60",
                "--batch-size",
                "4",
                "--lr",
                "3e-3",
                "--log-every",
                "10",
                "--eval-every",
                "30",
                "--eval-fragments",
                "8",
                "--device",
                "cpu",
            ],
            [run / WEIGHTS, run / METRICS],
        ),
        (
            "plot its learning curves",
            ["plot-metrics", str(run), "-o", str(out / "tiny_run_curves.png")],
            [out / "tiny_run_curves.png"],
        ),
        (
            "score the example VCF with the default model",
            [
                "score-variants",
                str(data / "demo_variants.vcf"),
                "--reference",
                str(genome),
                "-o",
                str(out / "variants.scored.vcf.gz"),
                "--circular",
            ],
            [out / "variants.scored.vcf.gz"],
        ),
        (
            "rank the phage genes by predicted essentiality",
            [
                "essentiality",
                str(phage),
                str(phage_gff),
                "-o",
                str(out / "essentiality.tsv"),
                "--window",
                "4096",
                "--no-reverse-complement",
            ],
            [out / "essentiality.tsv"],
        ),
        (
            "export learned chunk boundaries of the phage genome",
            [
                "segments",
                str(phage),
                "-o",
                str(seg / "chunks.bed"),
                "--bedgraph",
                str(seg / "boundary.bedgraph"),
                "--context",
                "4096",
            ],
            [
                seg / "chunks.bed",
                seg / "boundary.stage1.bedgraph",
                seg / "boundary.stage2.bedgraph",
            ],
        ),
        (
            "measure where the boundaries fall (codons, start codons, intergenic)",
            [
                "segments-report",
                str(seg / "chunks.bed"),
                "--annotation",
                str(phage_gff),
                "--genome",
                str(phage),
                "-o",
                str(seg / "report"),
            ],
            [seg / "report"],
        ),
    ]


def command(
    out: Path = typer.Option(
        Path("demo_output"), "--out", "-o", help="Directory for all outputs (new or empty).",
        callback=output_dir,
    ),
    threads: int = typer.Option(
        0, "--threads", help="CPU threads per step (0: torch's default).", callback=up_to_cpus(0)
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite",
        help="Replace a non-empty --out (the old one is restored if the demo fails).",
    ),
) -> None:
    """Run prepare, train, score-variants, essentiality and segments on bundled data."""
    import os
    import time
    from importlib import resources

    from rich.console import Console
    from rich.table import Table

    from dnahnet_core.errors import DnahnetError
    from dnahnet_core.io.atomic import output_directory
    from dnahnet_core.model import default_model_dir
    from dnahnet_core.model.config import WEIGHTS

    console = Console(stderr=True)
    if not (default_model_dir() / WEIGHTS).exists():
        raise DnahnetError("the default model is missing from this installation")
    data = Path(str(resources.files("dnahnet_core") / "demo_data"))
    with output_directory(out, overwrite):
        env = dict(os.environ)
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        summary = Table(title=f"dnahnet demo: outputs in {out}/")
        summary.add_column("step", overflow="fold")
        summary.add_column("seconds", justify="right")
        summary.add_column("wrote", overflow="fold")
        start_all = time.perf_counter()
        steps = demo_steps(out, data)
        for number, (title, args, outputs) in enumerate(steps, start=1):
            console.print(f"\n[bold]{number}/{len(steps)} {title}[/bold]")
            console.print(
                f"$ dnahnet {' '.join(args)}", style="cyan", highlight=False, soft_wrap=True
            )
            start = time.perf_counter()
            step = f"demo step {number} ({args[0]})"
            if _run_step(args, env) != 0:
                raise DnahnetError(f"{step} failed; see the message above")
            missing = [str(p) for p in outputs if not p.exists()]
            if missing:
                raise DnahnetError(f"{step} did not write {', '.join(missing)}")
            summary.add_row(
                title, f"{time.perf_counter() - start:.1f}", "\n".join(str(p) for p in outputs)
            )
    console.print()
    console.print(summary)
    console.print(f"demo finished in {time.perf_counter() - start_all:.0f} s")


def _run_step(args: list[str], env: dict) -> int:
    """Run one dnahnet command; if the demo is stopped, the step is stopped the same way
    (SIGTERM, so that it removes its temporary files) and awaited."""
    import subprocess
    import sys

    step = subprocess.Popen([sys.executable, "-m", "dnahnet_cli", *args], env=env)
    try:
        return step.wait()
    except BaseException:
        step.terminate()
        step.wait()
        raise
