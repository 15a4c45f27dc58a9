"""`dnahnet segments`: learned chunks of a genome as BED6 (+ optional bedGraph)."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import typer


def command(
    genome: Path = typer.Argument(..., help="Genome FASTA (plain, gz, xz or bz2)."),
    model: str = typer.Option(None, "--model", "-m", help="Model directory or preset name."),
    stage: str = typer.Option("all", "--stage", help="Stage to report: 1, 2 or all."),
    output: Path = typer.Option(None, "--output", "-o", help="BED file (default: stdout)."),
    bedgraph: Path = typer.Option(
        None, "--bedgraph",
        help="Per-base boundary probability; with several stages X.bedgraph becomes "
        "X.stage1.bedgraph, X.stage2.bedgraph.",
    ),
    context: int = typer.Option(8192, "--context", help="Minimum left context per base (nt)."),
    stride: int = typer.Option(
        None, "--stride", help="New bases per window (default: = --context)."
    ),
    batch_size: int = typer.Option(4, "--batch-size", help="Windows per forward pass."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    track: bool = typer.Option(False, "--track", help="Start each file with a UCSC track line."),
) -> None:
    """Write one BED6 interval per learned chunk per stage (0-based, half-open)."""
    from dnahnet_core.device import resolve_device
    from dnahnet_core.errors import DnahnetError
    from dnahnet_core.io.atomic import atomic_open
    from dnahnet_core.io.fasta import load_genome
    from dnahnet_core.io.tracks import iter_bedgraph
    from dnahnet_core.model import load_model
    from dnahnet_core.progress import progress
    from dnahnet_core.tasks.segments import (
        iter_bed,
        parse_stages,
        segment_genome,
    )

    if context < 0:
        raise DnahnetError(f"--context {context}: must be >= 0")
    if stride is not None and stride < 1:
        raise DnahnetError(f"--stride {stride}: must be >= 1")
    if batch_size < 1:
        raise DnahnetError(f"--batch-size {batch_size}: must be >= 1")
    stages = parse_stages(stage)
    torch_device = resolve_device(device)
    sequences = load_genome(genome)  # validates every record before any output
    lm = load_model(model, device=torch_device).eval()
    total = sum(len(s) for s in sequences.values())

    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(progress("nt"))
        task = bar.add_task("segments", total=total, rate="")
        started = time.perf_counter()
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            minutes = (time.perf_counter() - started) / 60
            bar.update(task, advance=n, rate=f"{done / 1e6 / max(minutes, 1e-9):.3f} Mbp/min")

        bed = graphs = None
        for contig in segment_genome(
            lm, sequences, stages=stages, context=context, stride=stride,
            batch_size=batch_size, device=torch_device, on_progress=advance,
        ):
            if bed is None:  # the first contig tells the stages; nothing is written before
                bed = stack.enter_context(atomic_open(output, "w")) if output else sys.stdout
                paths = bedgraph_paths(bedgraph, contig.stages) if bedgraph else {}
                graphs = {s: stack.enter_context(atomic_open(p, "w")) for s, p in paths.items()}
                if track:
                    _write_track_lines(bed, graphs, contig.stages)
            bed.writelines(iter_bed(contig))
            bed.flush()
            for row, s in enumerate(contig.stages):
                if s in graphs:
                    graphs[s].writelines(iter_bedgraph(contig.name, contig.prob[row]))


def _write_track_lines(bed, graphs, stages) -> None:
    from dnahnet_core.io.tracks import bed_track_line, bedgraph_track_line

    label = "stage " + ",".join(map(str, stages))
    bed.write(bed_track_line("dnahnet_chunks", f"dnaHNet chunks, {label}"))
    for s, handle in graphs.items():
        handle.write(bedgraph_track_line(f"dnahnet_stage{s}", f"dnaHNet stage {s} boundary prob"))


def bedgraph_paths(path: Path, stages: list[int]) -> dict[int, Path]:
    """One file per stage: X.bedgraph -> X.stage1.bedgraph (unchanged for a single stage)."""
    if len(stages) == 1:
        return {stages[0]: path}
    suffix = path.suffix if path.suffix.lower() in (".bedgraph", ".bg", ".bdg") else ""
    stem = path.name[: -len(suffix)] if suffix else path.name
    return {s: path.with_name(f"{stem}.stage{s}{suffix or '.bedgraph'}") for s in stages}
