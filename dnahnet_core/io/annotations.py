"""Genome annotations in the three forms annotators write, as one list of features.

One entry point::

    genome = load_annotated_genome("genome.fna", "genes.gff")   # FASTA + GFF3
    genome = load_annotated_genome("prokka.gff")                # GFF3 with ##FASTA
    genome = load_annotated_genome("genome.gbk")                # GenBank/GBFF with sequence
    genome.contigs            # {record id: upper-case sequence}
    genome.features_of("CDS") # [Feature, ...] in file order; also "gene", "rRNA", "tRNA", ...

The format of each file is read from its content (compression too), never from its
name: ``LOCUS`` starts GenBank, ``>`` starts FASTA, ``##gff-version`` or a
nine-column tab line starts GFF3. GFF3 lines are parsed with gffutils (attributes
URL-decoded); GenBank with Biopython. When a separate FASTA is given its record
names are the reference, and annotation contig names are reconciled with
``dnahnet_core.io.contigs`` (exact name, then accession, then ``chrom_map``).

Coordinates are GFF-style: 1-based, closed. ``Feature.segments`` keeps the parts
of a multi-part feature in 5'->3' (biological) order; ``start``/``end`` are the
leftmost and rightmost bases. GFF lines that share an ``ID`` and type are one
feature (NCBI writes split CDSs that way). Attributes a CDS lacks (locus_tag,
old_locus_tag, gene, pseudo) are inherited from its ``Parent`` gene.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dnahnet_core.alphabet import normalise
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.compression import open_text
from dnahnet_core.io.contigs import ContigMatcher
from dnahnet_core.io.fasta import load_genome

# feature types that describe a whole record, not a feature on it
_RECORD_TYPES = {"region", "source", "chromosome", "contig", "supercontig", "databank_entry"}
_TRUE = {"true", "yes", "1", ""}


@dataclass(frozen=True)
class Feature:
    """One annotated feature (CDS, gene, rRNA, tRNA, ...), coordinates 1-based closed."""

    contig: str
    start: int
    end: int
    strand: str  # "+", "-" or "."
    type: str
    locus_tag: str = ""
    old_locus_tag: str = ""
    name: str = ""  # gene name (GFF `gene`/`Name` of a gene, GenBank /gene)
    product: str = ""
    pseudo: bool = False
    partial_5: bool = False  # 5' end missing (no start codon), on the feature's strand
    partial_3: bool = False  # 3' end missing
    phase: int = 0  # bases before the first complete codon at the 5' end (codon_start - 1)
    segments: tuple[tuple[int, int], ...] = ()  # (start, end) parts, 5'->3' order
    crosses_origin: bool = False
    id: str = ""
    where: str = ""  # "file: line N" / "file: record R", for messages
    transl_table: int = 0  # NCBI genetic code of a CDS (transl_table); 0 = not given

    @property
    def partial(self) -> bool:
        return self.partial_5 or self.partial_3

    @property
    def label(self) -> str:
        """The best single identifier: locus tag, else ID, else contig:start-end."""
        return self.locus_tag or self.id or f"{self.contig}:{self.start}-{self.end}"

    @property
    def length(self) -> int:
        return sum(end - start + 1 for start, end in self.segments)


@dataclass
class AnnotatedGenome:
    contigs: dict[str, str]
    features: list[Feature] = field(default_factory=list)
    sources: tuple[str, ...] = ()  # the files read, for messages

    def features_of(self, types: str | Iterable[str]) -> list[Feature]:
        """Features of the given type(s), in file order."""
        wanted = {types} if isinstance(types, str) else set(types)
        return [f for f in self.features if f.type in wanted]


# ---------------------------------------------------------------- format detection


def detect_format(path: str | os.PathLike) -> str:
    """'genbank', 'gff3' or 'fasta', from the first meaningful line of the file."""
    path = Path(path)
    try:
        with open_text(path) as handle:
            for line in handle:
                line = line.strip("\r\n")
                if not line.strip():
                    continue
                if line.startswith("LOCUS"):
                    return "genbank"
                if line.startswith(">"):
                    return "fasta"
                if line.startswith("##gff-version") or len(line.split("\t")) == 9:
                    return "gff3"
                if line.startswith("#"):
                    continue
                break
    except (OSError, EOFError) as error:
        raise DnahnetError(f"{path}: cannot read ({error})") from None
    raise DnahnetError(f"{path}: not FASTA, GFF3 or GenBank (format not recognised from content)")


# ---------------------------------------------------------------- GFF3


def _split_gff(path: Path) -> tuple[list[tuple[int, str]], dict[str, str]]:
    """Feature lines (numbered) and the sequences after ##FASTA, if any."""
    lines: list[tuple[int, str]] = []
    fasta_lines: list[str] = []
    in_fasta = False
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if in_fasta:
                fasta_lines.append(line)
            elif line.startswith("##FASTA") or line.startswith(">"):
                in_fasta = True
                if line.startswith(">"):
                    fasta_lines.append(line)
            elif line.strip() and not line.startswith("#"):
                lines.append((number, line))
    contigs: dict[str, str] = {}
    name = None
    parts: list[str] = []
    for line in fasta_lines + [">"]:
        if line.startswith(">"):
            if name is not None:
                if name in contigs:
                    raise DnahnetError(f"{path}: ##FASTA section: duplicate record {name!r}")
                contigs[name] = normalise("".join(parts), where=f"{path}: ##FASTA record {name}")
            name, parts = (line[1:].split() or [""])[0], []
        elif line.strip():
            if name is None:
                raise DnahnetError(f"{path}: ##FASTA section: sequence before its first "
                                   "'>' header line")
            parts.append(line.strip())
    return lines, contigs


def _gff_feature(path: Path, number: int, line: str):
    from gffutils import constants
    from gffutils.feature import feature_from_line

    where = f"{path}: line {number}"
    fields = line.split("\t")
    if len(fields) != 9:
        raise DnahnetError(f"{where}: expected 9 tab-separated GFF3 columns, found {len(fields)}")
    if not (fields[3].isdigit() and fields[4].isdigit()):
        raise DnahnetError(f"{where}: start/end must be integers, got {fields[3]!r}, {fields[4]!r}")
    if int(fields[3]) < 1 or int(fields[4]) < int(fields[3]):
        raise DnahnetError(f"{where}: invalid interval {fields[3]}..{fields[4]}")
    if fields[6] not in {"+", "-", ".", "?"}:
        raise DnahnetError(f"{where}: strand must be +, - or ., got {fields[6]!r}")
    if fields[7] not in {"0", "1", "2", "."}:
        raise DnahnetError(f"{where}: phase must be 0, 1, 2 or ., got {fields[7]!r}")
    try:
        return feature_from_line(line, dialect=constants.dialect, strict=False)
    except Exception as error:  # gffutils raises assorted types on malformed attributes
        raise DnahnetError(f"{where}: cannot parse GFF3 attributes ({error})") from None


def _attributes(feat) -> dict[str, list[str]]:
    """Column 9 as {tag: values}, spaces around tags and values dropped: some tools write
    ``ID=x; Parent=y`` (GTF habit), which would otherwise hide every tag but the first."""
    return {key.strip(): [v.strip() for v in values] for key, values in feat.attributes.items()}


def _first(attrs, *keys: str) -> str:
    for key in keys:
        values = attrs.get(key)
        if values:
            return ",".join(v for v in values if v)
    return ""


def _flag(attrs, key: str) -> bool:
    values = attrs.get(key)
    return values is not None and (not values or values[0].lower() in _TRUE)


def _table(text: str) -> int:
    return int(text) if text.strip().isdigit() else 0


def _read_gff(path: Path) -> tuple[list[Feature], dict[str, str]]:
    lines, embedded = _split_gff(path)
    records: dict[str, dict] = {}  # ID -> merged record (ID-less features get unique keys)
    order: list[str] = []
    for number, line in lines:
        feat = _gff_feature(path, number, line)
        if feat.featuretype in _RECORD_TYPES:
            continue
        attrs = _attributes(feat)
        ident = _first(attrs, "ID")
        key = f"{feat.featuretype}\t{ident}" if ident else f"#{number}"
        segment = (feat.start, feat.end, feat.frame)
        if key in records:
            rec = records[key]
            if rec["seqid"] != feat.seqid or rec["strand"] != feat.strand:
                raise DnahnetError(
                    f"{path}: line {number}: parts of {ident!r} lie on different contigs or strands"
                )
            rec["segments"].append(segment)
            continue
        records[key] = {
            "seqid": feat.seqid,
            "type": feat.featuretype,
            "strand": "." if feat.strand == "?" else feat.strand,
            "attrs": attrs,
            "segments": [segment],
            "id": ident,
            "where": f"{path}: line {number}",
        }
        order.append(key)
    by_id = {rec["id"]: rec for rec in records.values() if rec["id"]}

    def inherited(rec: dict, *keys: str) -> str:
        seen = set()
        while rec is not None and id(rec) not in seen:
            seen.add(id(rec))
            value = _first(rec["attrs"], *keys)
            if value:
                return value
            parent = _first(rec["attrs"], "Parent").split(",")[0]
            rec = by_id.get(parent)
        return ""

    def inherited_flag(rec: dict, key: str) -> bool:
        parent = by_id.get(_first(rec["attrs"], "Parent").split(",")[0])
        return _flag(rec["attrs"], key) or (parent is not None and _flag(parent["attrs"], key))

    features = []
    for key in order:
        rec = records[key]
        attrs = rec["attrs"]
        minus = rec["strand"] == "-"
        segs = sorted(rec["segments"], key=lambda s: s[0], reverse=minus)
        left_partial = "start_range" in attrs
        right_partial = "end_range" in attrs
        name = inherited(rec, "gene")
        if not name and rec["type"] == "gene":
            name = _first(attrs, "Name")
        phase_text = segs[0][2]
        features.append(
            Feature(
                contig=rec["seqid"],
                start=min(s[0] for s in segs),
                end=max(s[1] for s in segs),
                strand=rec["strand"],
                type=rec["type"],
                locus_tag=inherited(rec, "locus_tag"),
                old_locus_tag=inherited(rec, "old_locus_tag"),
                name=name,
                product=_first(attrs, "product"),
                pseudo=inherited_flag(rec, "pseudo")
                or rec["type"] == "pseudogene"
                or _first(attrs, "gene_biotype") == "pseudogene",
                partial_5=right_partial if minus else left_partial,
                partial_3=left_partial if minus else right_partial,
                phase=int(phase_text) if phase_text in {"0", "1", "2"} else 0,
                transl_table=_table(_first(attrs, "transl_table")),
                segments=tuple((s[0], s[1]) for s in segs),
                id=rec["id"],
                where=rec["where"],
            )
        )
    return features, embedded


# ---------------------------------------------------------------- GenBank


def _read_genbank(path: Path) -> tuple[list[Feature], dict[str, str], list[str]]:
    from Bio import SeqIO
    from Bio.Seq import UndefinedSequenceError
    from Bio.SeqFeature import AfterPosition, BeforePosition

    features: list[Feature] = []
    contigs: dict[str, str] = {}
    with open_text(path) as handle:
        text = handle.read()
    try:
        records = list(SeqIO.parse(io.StringIO(text), "genbank"))
    except ValueError as error:
        raise DnahnetError(f"{path}: cannot parse GenBank ({error})") from None
    if not records:
        raise DnahnetError(f"{path}: no GenBank records")
    missing = []
    for record in records:
        name = record.id if record.id and record.id != "<unknown id>" else record.name
        if name in contigs:
            raise DnahnetError(f"{path}: duplicate GenBank record {name!r}")
        try:
            contigs[name] = normalise(str(record.seq), where=f"{path}: record {name}")
        except UndefinedSequenceError:
            contigs[name] = ""
            missing.append(name)
        for number, feat in enumerate(record.features, start=1):
            if feat.type in _RECORD_TYPES or feat.location is None:
                continue
            q = feat.qualifiers
            strand = {1: "+", -1: "-"}.get(feat.location.strand, ".")
            parts = list(feat.location.parts)  # biological order for compound locations
            segments = tuple((int(p.start) + 1, int(p.end)) for p in parts)
            lo, hi = parts[0].start, parts[-1].end
            if strand == "-":
                lo, hi = parts[-1].start, parts[0].end
            left_partial = isinstance(lo, BeforePosition) or any(
                isinstance(p.start, BeforePosition) for p in parts
            )
            right_partial = isinstance(hi, AfterPosition) or any(
                isinstance(p.end, AfterPosition) for p in parts
            )
            codon_start = (q.get("codon_start") or ["1"])[0]
            features.append(
                Feature(
                    contig=name,
                    start=min(s for s, _ in segments),
                    end=max(e for _, e in segments),
                    strand=strand,
                    type=feat.type,
                    locus_tag=(q.get("locus_tag") or [""])[0],
                    old_locus_tag=(q.get("old_locus_tag") or [""])[0],
                    name=(q.get("gene") or [""])[0],
                    product=(q.get("product") or [""])[0],
                    pseudo="pseudo" in q or "pseudogene" in q,
                    partial_5=right_partial if strand == "-" else left_partial,
                    partial_3=left_partial if strand == "-" else right_partial,
                    phase=int(codon_start) - 1 if codon_start in {"1", "2", "3"} else 0,
                    transl_table=_table((q.get("transl_table") or [""])[0]),
                    segments=segments,
                    id=(q.get("protein_id") or [""])[0],
                    where=f"{path}: record {name}, feature {number}",
                )
            )
    return features, contigs, missing


# ---------------------------------------------------------------- origin, assembly


def _crosses_origin(feature: Feature, length: int) -> bool:
    """Parts that wrap: past the contig end, or 5'->3' order that jumps back over the origin."""
    if feature.end > length:
        return True
    segs = feature.segments
    if len(segs) < 2:
        return False
    step = 1 if feature.strand != "-" else -1
    for (s1, e1), (s2, e2) in zip(segs, segs[1:], strict=False):
        if step == 1 and s2 < s1 and e1 == length and s2 == 1:
            return True
        if step == -1 and s2 > s1 and s1 == 1 and e2 == length:
            return True
    return False


def _read_annotation(path: Path) -> tuple[list[Feature], dict[str, str], list[str]]:
    """Features, the sequences the file carries, and records that lack one."""
    kind = detect_format(path)
    if kind == "gff3":
        features, contigs = _read_gff(path)
        return features, contigs, []
    if kind == "genbank":
        return _read_genbank(path)
    raise DnahnetError(f"{path}: is FASTA; expected an annotation (GFF3 or GenBank)")


def load_annotated_genome(
    genome_path: str | os.PathLike,
    annotation_path: str | os.PathLike | None = None,
    *,
    chrom_map: dict[str, str] | None = None,
    map_option: str | None = "--chrom-map",
) -> AnnotatedGenome:
    """Sequences and features from FASTA + GFF3/GenBank, or one GFF3/GenBank with sequence.
    ``map_option``: the command's option for ``chrom_map``, named in errors (None: none)."""
    genome_path = Path(genome_path)
    genome_kind = detect_format(genome_path)
    if annotation_path is None:
        if genome_kind == "fasta":
            raise DnahnetError(
                f"{genome_path}: FASTA has no annotation; give a GFF3 or GenBank file as well"
            )
        features, contigs, missing = _read_annotation(genome_path)
        if missing:
            raise DnahnetError(
                f"{genome_path}: GenBank record {missing[0]} has no sequence "
                "(no ORIGIN section); give the genome FASTA as well"
            )
        if not contigs:
            raise DnahnetError(
                f"{genome_path}: GFF3 has no ##FASTA section; give the genome FASTA as well"
            )
        sources: tuple[str, ...] = (str(genome_path),)
        label = str(genome_path)
    else:
        annotation_path = Path(annotation_path)
        if genome_kind != "fasta":
            raise DnahnetError(
                f"{genome_path}: expected the genome FASTA first, then the annotation "
                f"(found {genome_kind})"
            )
        contigs = load_genome(genome_path)
        features, _, _ = _read_annotation(annotation_path)
        sources = (str(genome_path), str(annotation_path))
        label = str(annotation_path)
    features = _reconcile(features, contigs, chrom_map, label, str(genome_path), map_option)
    return AnnotatedGenome(contigs=contigs, features=features, sources=sources)


def _reconcile(
    features: list[Feature],
    contigs: dict[str, str],
    chrom_map: dict[str, str] | None,
    label: str,
    reference: str,
    map_option: str | None,
) -> list[Feature]:
    from dataclasses import replace

    names = list(dict.fromkeys(f.contig for f in features))
    if names and not chrom_map and not any(n in contigs for n in names):
        matcher = ContigMatcher(contigs, reference_label=reference, query_label=label,
                                map_option=map_option)
        if not any(matcher.resolve(n) for n in names):
            raise DnahnetError(
                f"{label}: no annotation contig matches a sequence record of {reference} "
                f"(annotation: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}; "
                f"sequences: {', '.join(list(contigs)[:5])}{' ...' if len(contigs) > 5 else ''}); "
                f"{matcher.advice}"
            )
    matcher = ContigMatcher(
        contigs, chrom_map=chrom_map, reference_label=reference, query_label=label,
        map_option=map_option,
    )
    mapping = matcher.match_all(names, where=label)
    out = []
    for feat in features:
        contig = mapping[feat.contig]
        length = len(contigs[contig])
        if not length:
            raise DnahnetError(f"{feat.where}: record {contig} has no sequence")
        crosses = _crosses_origin(feat, length)
        if feat.start > length or feat.end > 2 * length:
            raise DnahnetError(
                f"{feat.where}: {feat.start}..{feat.end} lies past the end of {contig} "
                f"({length} nt); is this the right genome?"
            )
        out.append(replace(feat, contig=contig, crosses_origin=crosses))
    return out
