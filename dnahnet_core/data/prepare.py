"""``dnahnet prepare``: genomes → filtered, deduplicated, non-overlapping fragments in shards.

Pipeline (one pass over the inputs, memory bounded by one record per worker):

1. expand inputs (files, directories, path lists) in a fixed order; with GTDB
   metadata, keep only files whose accession passes the filters (others are not read);
2. workers (``--workers``; processes over files, spawn-safe) decompress and parse each
   file, cut every record into non-overlapping windows, drop windows over the N
   threshold, and write the survivors to a scratch file with a canonical digest each
   (SHA-256 of min(fragment, reverse complement));
3. the main process takes the results in input order, whatever the worker count,
   drops fragments whose digest was seen before, assigns each genome to a split from
   a hash of (seed, genome id), and appends the fragments to that split's shard;
4. ``genomes.tsv``, ``summary.txt`` and last ``manifest.json`` are written and the
   directory appears atomically under its final name.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from dnahnet_core import __version__
from dnahnet_core.data import shards
from dnahnet_core.data.fragments import PrepareOptions, process_file
from dnahnet_core.data.gtdb import MetadataFilter
from dnahnet_core.data.sources import expand_inputs, strip_suffixes
from dnahnet_core.data.splits import split_of
from dnahnet_core.errors import DnahnetError
from dnahnet_core.interrupts import workers_ignore_ctrl_c
from dnahnet_core.io.atomic import atomic_directory, check_output_directory
from dnahnet_core.progress import progress

WORK_DIR = ".work"
__all__ = ["PrepareOptions", "prepare", "summary"]


# ---------------------------------------------------------------- main side


class _Merger:
    """Consumes worker results in input order: dedup, split assignment, shard writing."""

    def __init__(self, root: Path, options: PrepareOptions, selector: MetadataFilter | None):
        self.root = root
        self.options = options
        self.selector = selector
        self.writers = {split: shards.SplitWriter(root / split) for split in shards.SPLITS}
        self.seen: set[bytes] = set()
        self.genome_rows: list[tuple] = []
        self.genome_source: dict[str, str] = {}
        self.inputs: list[dict] = []
        self.skipped: list[dict] = []
        self.counts = {
            "windows": 0,
            "dropped_n": 0,
            "duplicates": 0,
            "tails_dropped": 0,
            "tails_kept": 0,
            "genomes_excluded_by_metadata": 0,
        }

    def skip(self, problem: dict) -> None:
        if not self.options.skip_bad:
            raise DnahnetError(problem["error"])
        _note(f"skipping: {problem['error']}")
        self.skipped.append(problem)

    def add(self, result: dict) -> None:
        if "error" in result:
            self.skip({"path": result["path"], "error": result["error"]})
            return
        for genome in result["genomes"]:
            if genome["id"] in self.genome_source:
                self.skip(
                    {
                        "path": result["path"],
                        "error": f"{result['path']}: genome {genome['id']!r} already read "
                        f"from {self.genome_source[genome['id']]}",
                    }
                )
                self._drop_scratch(result)
                return
        self.inputs.append(
            {key: result[key] for key in ("path", "bytes", "sha256", "compression", "format")}
            | {"genomes": len(result["genomes"])}
        )
        for key in ("windows", "dropped_n", "tails_dropped", "tails_kept"):
            self.counts[key] += result[key]
        with open(result["scratch"], "rb", buffering=0) as scratch:
            for genome in result["genomes"]:
                self._add_genome(result["path"], genome, scratch)
            for writer in self.writers.values():
                writer.flush_copies()
        self._drop_scratch(result)

    @staticmethod
    def _drop_scratch(result: dict) -> None:
        Path(result["scratch"]).unlink(missing_ok=True)

    def _add_genome(self, path: str, genome: dict, scratch) -> None:
        genome_id = genome["id"]
        self.genome_source[genome_id] = path
        if self.selector is not None and result_is_table(path):
            _accession, reason = self.selector.select(genome_id)
            if reason is not None:  # counted by the selector, like excluded FASTA files
                return
        options = self.options
        split = split_of(genome_id, options.seed, options.val_fraction, options.test_fraction)
        writer = self.writers[split]
        index = len(self.genome_rows)
        kept = 0
        for offset, length, digest in genome["fragments"]:
            if options.dedup:
                if digest in self.seen:
                    self.counts["duplicates"] += 1
                    continue
                self.seen.add(digest)
            writer.append_from(scratch, offset, length, index)
            kept += 1
        self.genome_rows.append(
            (index, genome_id, split, path, genome["records"], genome["nucleotides"], kept)
        )

    def finish(self) -> dict:
        return {split: writer.close() for split, writer in self.writers.items()}


def result_is_table(path: str) -> bool:
    return strip_suffixes(Path(path).name)[1] != "fasta"


def _note(message: str) -> None:
    """A plain stderr line, never wrapped (file names stay on one greppable line)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _results(tasks: list, workers: int):
    if workers == 1 or len(tasks) <= 1:
        for task in tasks:
            yield process_file(task)
        return
    with workers_ignore_ctrl_c():  # the main process stops the pool and cleans up
        pool = multiprocessing.get_context("spawn").Pool(min(workers, len(tasks)))
    with pool:
        yield from pool.imap(process_file, tasks, chunksize=1)


def prepare(
    inputs: list[str | os.PathLike],
    out: str | os.PathLike,
    options: PrepareOptions,
    *,
    overwrite: bool = False,
    command: list[str] | None = None,
    show_progress: bool | None = None,
) -> dict:
    """Build a prepared dataset at ``out``; returns its manifest."""
    options.validate()
    out = Path(out)
    check_output_directory(out, overwrite, inputs)  # before reading anything
    if not inputs:
        raise DnahnetError("no inputs given")
    files, problems = expand_inputs(inputs)
    selector = None
    if options.metadata:
        selector = MetadataFilter(
            options.metadata,
            options.min_completeness,
            options.max_contamination,
            options.representatives_only,
        )
    with atomic_directory(out, overwrite, inputs) as root:
        merger = _Merger(root, options, selector)
        for problem in problems:
            merger.skip(problem)
        chosen = _select_files(files, selector, merger)
        if not chosen and not merger.skipped:
            raise DnahnetError("no input files left to read (all excluded by --metadata filters)")
        work = root / WORK_DIR
        work.mkdir()
        tasks = [(i, str(path), str(work), options) for i, path in enumerate(chosen)]
        sizes = [path.stat().st_size for path in chosen]
        with progress("bytes", enabled=show_progress) as bar:
            task_id = bar.add_task("prepare", total=sum(sizes))
            for size, result in zip(sizes, _results(tasks, options.workers), strict=True):
                merger.add(result)
                bar.advance(task_id, size)
        work.rmdir()
        splits = merger.finish()
        if sum(entry["fragments"] for entry in splits.values()) == 0:
            raise DnahnetError("no fragments left after filtering (nothing to write)")
        _write_genomes(root / shards.GENOMES_FILE, merger.genome_rows)
        manifest = _manifest(options, merger, selector, splits, command)
        (root / shards.SUMMARY_FILE).write_text(summary(manifest), encoding="utf-8")
        (root / shards.MANIFEST_FILE).write_text(
            json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8"
        )
    return manifest


def _select_files(files: list[Path], selector, merger: _Merger) -> list[Path]:
    if selector is None:
        return files
    chosen = []
    for path in files:
        if result_is_table(str(path)):
            chosen.append(path)  # rows are matched one by one after reading
            continue
        _accession, reason = selector.select(path.name)
        if reason is None:
            chosen.append(path)
        elif reason == "unmatched":
            _note(f"no GTDB metadata for {path} (not used)")
    return chosen


def _write_genomes(path: Path, rows: list[tuple]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("genome_index\tgenome_id\tsplit\tsource\trecords\tnucleotides\tfragments\n")
        for row in rows:
            handle.write("\t".join(map(str, row)) + "\n")


def _manifest(options, merger: _Merger, selector, splits: dict, command) -> dict:
    settings = asdict(options)
    settings.pop("workers")
    settings.pop("skip_bad")
    filters = dict(merger.counts)
    filters["genomes_without_fragments"] = [
        genome_id for _, genome_id, *_, fragments in merger.genome_rows if not fragments
    ]
    filters["max_n_fraction"] = options.max_n_fraction
    filters["dedup"] = "canonical (fragment or reverse complement), first occurrence kept"
    if selector is not None:
        filters["metadata"] = selector.report()
        filters["genomes_excluded_by_metadata"] = sum(
            n for reason, n in filters["metadata"]["counts"].items() if reason != "selected"
        )
    return {
        "format": shards.FORMAT,
        "format_version": shards.FORMAT_VERSION,
        "complete": True,
        "fragment_length": options.fragment_length,
        "tail": {
            "policy": "keep" if options.keep_tail else "drop",
            "min_length": options.min_tail_length if options.keep_tail else None,
            "note": "kept tails are shorter than fragment_length; pad and mask them in training",
        },
        "alphabet": "ACGTN",
        "dtype": "uint8",
        "seed": options.seed,
        "split_fractions": {"val": options.val_fraction, "test": options.test_fraction},
        "split_rule": "by genome: blake2b(f'{seed}\\t{genome_id}') mapped to [0, 1)",
        "splits": splits,
        "genomes": len(merger.genome_rows),
        "filters": filters,
        "inputs": merger.inputs,
        "skipped": merger.skipped,
        "settings": settings,
        "versions": {
            "dnahnet": __version__,
            "python": sys.version.split()[0],
            "numpy": np.__version__,
        },
        "command": command or [],
    }


def summary(manifest: dict) -> str:
    """A few human-readable lines about a prepared dataset."""
    filters = manifest["filters"]
    lines = [
        f"dnahnet prepared dataset (format {manifest['format_version']}), "
        f"fragment length {manifest['fragment_length']}, tails {manifest['tail']['policy']}"
        + (
            f" (>= {manifest['tail']['min_length']} nt)"
            if manifest["tail"]["policy"] == "keep"
            else ""
        ),
        f"inputs: {len(manifest['inputs'])} files, {manifest['genomes']} genomes, "
        f"{len(manifest['skipped'])} skipped",
    ]
    for split, entry in manifest["splits"].items():
        lines.append(
            f"  {split:<5} {entry['genomes']:>7} genomes {entry['fragments']:>10} fragments "
            f"{entry['nucleotides']:>14,} nt"
        )
    lines.append(
        f"filters: {filters['windows']} windows cut, {filters['dropped_n']} over the "
        f"N threshold ({filters['max_n_fraction']}), {filters['duplicates']} duplicates, "
        f"{filters['tails_dropped']} tails dropped, {filters['tails_kept']} tails kept"
    )
    if "metadata" in filters:
        counts = filters["metadata"]["counts"]
        lines.append(
            "metadata: " + ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in counts.items())
        )
    for problem in manifest["skipped"]:
        lines.append(f"skipped: {problem['error']}")
    lines += _warnings(manifest)
    return "\n".join(lines) + "\n"


def _warnings(manifest: dict) -> list[str]:
    """What the user asked for and did not get: an empty train/val/test split, genomes that
    gave no fragment."""
    warnings = []
    splits = manifest["splits"]
    fractions = manifest.get("split_fractions", {})
    if "train" in splits and not splits["train"].get("fragments"):
        asked = " and ".join(f"--{split}-fraction {fraction:g}"
                             for split, fraction in fractions.items()) or "these settings"
        warnings.append(
            f"warning: the train split is empty: genomes go to splits whole, and "
            f"{manifest['genomes']} genome(s) at {asked} gave it none, so training will not "
            f"be possible (use smaller --val-fraction/--test-fraction, more genomes or "
            f"another --seed)"
        )
    for split, fraction in fractions.items():
        if fraction > 0 and not splits.get(split, {}).get("fragments"):
            warnings.append(
                f"warning: the {split} split is empty: genomes go to splits whole, and "
                f"{manifest['genomes']} genome(s) at --{split}-fraction {fraction:g} gave it "
                f"none (use more genomes, a larger fraction or another --seed)"
                + (": train has nothing to validate on" if split == "val" else "")
            )
    unused = manifest["genomes"] - sum(entry["genomes"] for entry in splits.values())
    if unused > 0:
        names = manifest["filters"].get("genomes_without_fragments", [])
        named = f": {', '.join(names[:5])}{', ...' if len(names) > 5 else ''}" if names else ""
        warnings.append(
            f"warning: {unused} genome(s) gave no fragment (shorter than --fragment-length "
            f"{manifest['fragment_length']} with tails dropped, or every window filtered)"
            + named
        )
    return warnings
