#!/usr/bin/env python
"""Build the annotation test fixtures in tests/data/annotated/ (deterministic).

1. One genome in three forms, cut from the bundled Mycoplasma alvi draft
   (dnahnet_core/demo_data/mycoplasma_alvi.fna.gz + .gff.gz, NCBI RefSeq):
   the first ``LENGTH`` nt of each contig in ``CUTS`` (features wholly inside the cut
   kept verbatim, features crossing it dropped), written as

   * ``mycoplasma_subset.fna.gz`` + ``mycoplasma_subset.gff.gz``: FASTA + the RefSeq
     GFF3 lines, unchanged except ``##sequence-region`` lengths;
   * ``mycoplasma_subset.prokka.gff.gz``: the same CDS/tRNA/rRNA/tmRNA features in
     Prokka's layout (no gene parents, ``ID=locus_tag``, ``Name``/``gene``/``product``,
     plus the ``pseudo``/``partial``/``start_range``/``end_range`` attributes the RefSeq
     lines carry) and the sequence after ``##FASTA``;
   * ``mycoplasma_subset.gbk.gz``: GenBank written by Biopython, one ``gene`` and one
     CDS/tRNA/... feature per RefSeq pair (``/pseudo``, ``/codon_start`` from the phase,
     ``<``/``>`` from ``start_range``/``end_range``).

   The GFF3 is parsed here with plain string splitting, independently of
   ``dnahnet_core.io.annotations``, so the tests compare two implementations.

2. Faithful subsets of two third-party files in ../shared/data/annotated:

   * ``ecoli_prokka_subset.gff.gz``: the Prokka GFF3 of an E. coli draft, restricted
     to the contigs in ``ECOLI_CONTIGS`` (their ``##sequence-region`` lines, feature
     lines and ##FASTA records, all verbatim);
   * ``leptospira_subset.gbk.gz``: the records of the Leptospira kirschneri H1
     RefSeq GenBank named in ``LEPTOSPIRA_RECORDS``, verbatim.

Outputs are gzip with mtime 0, so re-running gives byte-identical files.

    .venv/bin/python scripts/make_annotation_fixtures.py [--shared ../shared/data/annotated]
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path
from urllib.parse import unquote

from Bio import SeqIO
from Bio.Seq import Seq
from Bio.SeqFeature import AfterPosition, BeforePosition, SeqFeature, SimpleLocation
from Bio.SeqRecord import SeqRecord

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "dnahnet_core" / "demo_data"
OUT = ROOT / "tests" / "data" / "annotated"

# contig -> length of the cut (from position 1)
CUTS = {"NZ_JNJU01000001.1": 24_000, "NZ_KL370825.1": 12_000, "NZ_JNJU01000009.1": 1108}
KEPT_TYPES = {"gene", "pseudogene", "CDS", "tRNA", "rRNA", "tmRNA"}
PROKKA_TYPES = {"CDS", "tRNA", "rRNA", "tmRNA"}
ECOLI_CONTIGS = ["BAC_00031", "BAC_00032", "BAC_00191"]
LEPTOSPIRA_RECORDS = ["NZ_AHMY02000075", "NZ_AHMY02000073", "NZ_AHMY02000072",
                      "NZ_AHMY02000071", "NZ_AHMY02000070"]


def write_gz(path: Path, text: str) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(text.encode())
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes)")


def esc(value: str) -> str:
    """GFF3 column-9 escaping of a value."""
    for char in "%;=&,":
        value = value.replace(char, f"%{ord(char):02X}")
    return value


def read_fasta(path: Path) -> dict[str, str]:
    return {r.id: str(r.seq) for r in SeqIO.parse(gzip.open(path, "rt"), "fasta")}


def attributes(column: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in column.strip().split(";") if "=" in item)
    return {key: unquote(value) for key, value in pairs}


def mycoplasma_subset() -> None:
    genome = read_fasta(DEMO / "mycoplasma_alvi.fna.gz")
    seqs = {name: genome[name][:length] for name, length in CUTS.items()}
    rows = []
    for line in gzip.open(DEMO / "mycoplasma_alvi.gff.gz", "rt"):
        fields = line.rstrip("\n").split("\t")
        if len(fields) != 9 or fields[0] not in CUTS or fields[2] not in KEPT_TYPES:
            continue
        if int(fields[4]) <= CUTS[fields[0]]:
            rows.append(fields)

    header = ["##gff-version 3"] + [f"##sequence-region {n} 1 {len(s)}" for n, s in seqs.items()]
    fasta = "".join(f">{n}\n" + "".join(s[i:i + 80] + "\n" for i in range(0, len(s), 80))
                    for n, s in seqs.items())
    write_gz(OUT / "mycoplasma_subset.fna.gz", fasta)
    write_gz(OUT / "mycoplasma_subset.gff.gz",
             "\n".join(header + ["\t".join(r) for r in rows]) + "\n")

    by_id = {attributes(r[8]).get("ID"): r for r in rows}
    prokka, records = [], {n: SeqRecord(Seq(s), id=n, name=n.split(".")[0],
                                        description=f"{n} subset (first {len(s)} nt)")
                           for n, s in seqs.items()}
    for record in records.values():
        record.annotations.update(molecule_type="DNA", topology="linear",
                                  data_file_division="BCT", date="01-JAN-2024")
    for r in rows:
        if r[2] not in PROKKA_TYPES:
            continue
        attrs = attributes(r[8])
        parent = attributes(by_id[attrs["Parent"]][8]) if attrs.get("Parent") in by_id else {}
        tag = attrs.get("locus_tag") or parent.get("locus_tag")
        gene = attrs.get("gene") or parent.get("gene", "")
        pseudo = "pseudo" in attrs or "pseudo" in parent
        keep = [f"ID={tag}"] + ([f"Name={esc(gene)}", f"gene={esc(gene)}"] if gene else [])
        keep += [f"locus_tag={tag}", f"product={esc(attrs.get('product', ''))}"]
        keep += [f"{k}={attrs[k]}" for k in ("partial", "start_range", "end_range") if k in attrs]
        keep += ["pseudo=true"] if pseudo else []
        prokka.append("\t".join(r[:8] + [";".join(keep)]))
        # GenBank: a gene and the feature itself
        start = BeforePosition(int(r[3]) - 1) if "start_range" in attrs else int(r[3]) - 1
        end = AfterPosition(int(r[4])) if "end_range" in attrs else int(r[4])
        location = SimpleLocation(start, end, strand=1 if r[6] == "+" else -1)
        quals = {"locus_tag": [tag]} | ({"gene": [gene]} if gene else {})
        gene_quals = dict(quals) | ({"pseudo": [""]} if pseudo else {})
        records[r[0]].features.append(SeqFeature(location, type="gene", qualifiers=gene_quals))
        feat_quals = dict(gene_quals)
        if r[2] == "CDS":
            feat_quals["codon_start"] = [str(int(r[7]) + 1)]
            feat_quals["transl_table"] = [attrs.get("transl_table", "4")]
        feat_quals["product"] = [attrs.get("product", "")]
        records[r[0]].features.append(SeqFeature(location, type=r[2], qualifiers=feat_quals))

    write_gz(OUT / "mycoplasma_subset.prokka.gff.gz",
             "\n".join(header + prokka) + "\n##FASTA\n" + fasta)
    text = io.StringIO()
    SeqIO.write(list(records.values()), text, "genbank")
    write_gz(OUT / "mycoplasma_subset.gbk.gz", text.getvalue())


def ecoli_subset(shared: Path) -> None:
    wanted = set(ECOLI_CONTIGS)
    out, in_fasta, keep = [], False, False
    for line in gzip.open(shared / "ecoli_draft_prokka.gff.gz", "rt"):
        if in_fasta:
            if line.startswith(">"):
                keep = line[1:].split()[0] in wanted
            if keep:
                out.append(line)
        elif line.startswith("##FASTA"):
            in_fasta = True
            out.append(line)
        elif line.startswith("##sequence-region"):
            if line.split()[1] in wanted:
                out.append(line)
        elif line.startswith("#") or line.split("\t")[0] in wanted:
            out.append(line)
    write_gz(OUT / "ecoli_prokka_subset.gff.gz", "".join(out))


def leptospira_subset(shared: Path) -> None:
    wanted, out, keep = set(LEPTOSPIRA_RECORDS), [], False
    for line in gzip.open(shared / "leptospira_kirschneri_h1.gbk.gz", "rt"):
        if line.startswith("LOCUS"):
            keep = line.split()[1] in wanted
        if keep:
            out.append(line)
    write_gz(OUT / "leptospira_subset.gbk.gz", "".join(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared/data/annotated")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    mycoplasma_subset()
    ecoli_subset(args.shared)
    leptospira_subset(args.shared)


if __name__ == "__main__":
    main()
