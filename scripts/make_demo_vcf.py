#!/usr/bin/env python
"""Write the demo VCF: seeded random variants on the bundled Mycoplasma alvi genome.

    python scripts/make_demo_vcf.py [--seed 7] [-o dnahnet_core/demo_data/demo_variants.vcf]

Variants are drawn on the three largest contigs of
dnahnet_core/demo_data/mycoplasma_alvi.fna.gz, every REF read from the genome:
24 SNVs, one 3-nt MNV, 3 insertions and 3 deletions (VCF style, with the anchor base
before the event), and one multi-allelic SNV site (two ALT alleles). Positions avoid
N bases and lie at least 50 nt from contig ends. The same seed writes the same file.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENOME = ROOT / "dnahnet_core" / "demo_data" / "mycoplasma_alvi.fna.gz"
DEFAULT_OUT = ROOT / "dnahnet_core" / "demo_data" / "demo_variants.vcf"


def draw(genome: dict[str, str], rng: random.Random) -> list[tuple[str, int, str, str, str]]:
    """(contig, 1-based pos, REF, ALT, kind) records."""
    contigs = sorted(genome, key=lambda name: -len(genome[name]))[:3]
    used: set[tuple[str, int]] = set()
    records = []

    def position(span: int) -> tuple[str, int]:
        while True:
            contig = rng.choice(contigs)
            start = rng.randrange(50, len(genome[contig]) - 50 - span)
            if "N" not in genome[contig][start : start + span + 1] and (contig, start) not in used:
                used.add((contig, start))
                return contig, start

    def other(base: str) -> str:
        return rng.choice([b for b in "ACGT" if b != base])

    for _ in range(24):
        contig, start = position(1)
        ref = genome[contig][start]
        records.append((contig, start + 1, ref, other(ref), "snv"))
    contig, start = position(3)
    ref = genome[contig][start : start + 3]
    records.append((contig, start + 1, ref, "".join(other(b) for b in ref), "mnv"))
    for _ in range(3):
        contig, start = position(1)
        anchor = genome[contig][start]
        inserted = "".join(rng.choice("ACGT") for _ in range(rng.randint(1, 6)))
        records.append((contig, start + 1, anchor, anchor + inserted, "insertion"))
    for _ in range(3):
        length = rng.randint(1, 6)
        contig, start = position(length + 1)
        ref = genome[contig][start : start + length + 1]
        records.append((contig, start + 1, ref, ref[0], "deletion"))
    contig, start = position(1)
    ref = genome[contig][start]
    alts = rng.sample([b for b in "ACGT" if b != ref], 2)
    records.append((contig, start + 1, ref, ",".join(alts), "multiallelic"))
    order = {name: i for i, name in enumerate(genome)}
    return sorted(records, key=lambda r: (order[r[0]], r[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    from dnahnet_core.io.fasta import load_genome

    genome = load_genome(GENOME)
    records = draw(genome, random.Random(args.seed))
    lines = [
        "##fileformat=VCFv4.2",
        f"##source=scripts/make_demo_vcf.py --seed {args.seed} (random demo variants, not real)",
        f"##reference={GENOME.name}",
    ]
    lines += [f"##contig=<ID={name},length={len(seq)}>" for name, seq in genome.items()]
    lines.append(
        '##INFO=<ID=KIND,Number=1,Type=String,Description="Variant class drawn by the script">'
    )
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    for i, (contig, pos, ref, alt, kind) in enumerate(records, start=1):
        lines.append(f"{contig}\t{pos}\tdemo{i}\t{ref}\t{alt}\t.\tPASS\tKIND={kind}")
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(records)} records to {args.output}")


if __name__ == "__main__":
    main()
