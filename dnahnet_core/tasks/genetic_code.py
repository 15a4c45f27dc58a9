"""NCBI genetic codes of prokaryotes: codon -> amino acid, start codons, translation.

One table per code, shared by ``check-model`` (SNV classes), ``score-variants
--annotation`` (consequences) and ``score-dms`` (protein changes):

    table = genetic_code_table(11)         # [64] amino-acid letters, indexed by codon tokens
    translate("ATGTGA", 4)                 # 'MW' (Mycoplasma: TGA = Trp)
    codon_table(11)["TAA"]                 # '*'
    is_start_codon("GTG", 11)              # True

A codon's index is 16 * b1 + 4 * b2 + b3 of its tokens (A=0 C=1 G=2 T=3); a codon with
an N translates to X. Start codons are NCBI's for each code (the initiator codon is
read as Met whichever it is).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product
from typing import TYPE_CHECKING

import numpy as np

from dnahnet_core.alphabet import N, encode
from dnahnet_core.errors import DnahnetError

if TYPE_CHECKING:
    from dnahnet_core.io.annotations import Feature

# amino acid (or * for stop) of each codon, codons ordered TTT, TTC, TTA, TTG, TCT, ... GGG
# (bases in T, C, A, G order), as NCBI prints the tables
GENETIC_CODES = {
    1: "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG",
    4: "FFLLSSSSYY**CCWWLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG",  # TGA = W
    11: "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG",
    25: "FFLLSSSSYY**CCGWLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG",  # TGA = G
}
START_CODONS = {
    1: frozenset({"TTG", "CTG", "ATG"}),
    4: frozenset({"TTA", "TTG", "CTG", "ATT", "ATC", "ATA", "ATG", "GTG"}),
    11: frozenset({"TTG", "CTG", "ATT", "ATC", "ATA", "ATG", "GTG"}),
    25: frozenset({"TTG", "ATG", "GTG"}),
}
DEFAULT_GENETIC_CODE = 11
_TCAG = np.array([2, 1, 3, 0])  # token A, C, G, T -> its index in T, C, A, G order


def check_genetic_code(code: int, where: str = "genetic code") -> None:
    """A user error naming ``where`` when ``code`` is not one of the supported tables."""
    if code not in GENETIC_CODES:
        supported = ", ".join(map(str, sorted(GENETIC_CODES)))
        raise DnahnetError(f"{where} {code} is not supported (prokaryotic codes: {supported})")


def genetic_code_table(code: int) -> np.ndarray:
    """[64] amino-acid letters indexed by 16 * b1 + 4 * b2 + b3 of tokens (A=0 C=1 G=2 T=3)."""
    check_genetic_code(code)
    letters = np.frombuffer(GENETIC_CODES[code].encode(), dtype="S1")
    b1, b2, b3 = np.meshgrid(np.arange(4), np.arange(4), np.arange(4), indexing="ij")
    return letters[(16 * _TCAG[b1] + 4 * _TCAG[b2] + _TCAG[b3]).ravel()]


def codon_table(code: int) -> dict[str, str]:
    """{codon: amino acid letter} of a genetic code (stop = ``*``)."""
    check_genetic_code(code)
    codons = ("".join(c) for c in product("TCAG", repeat=3))
    return dict(zip(codons, GENETIC_CODES[code], strict=True))


def amino_acids(codons: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Amino acids (``S1``) of codon tokens ``[..., 3]``; X where a codon has an N."""
    b = codons.astype(np.int64)
    unknown = (b == N).any(axis=-1)
    index = np.where(unknown, 0, 16 * b[..., 0] + 4 * b[..., 1] + b[..., 2])
    return np.where(unknown, b"X", table[index])


def translate(codons: str, code: int = DEFAULT_GENETIC_CODE) -> str:
    """Amino acids of a DNA string (length a multiple of 3); X for a codon with an N."""
    tokens = encode(codons).reshape(-1, 3)
    return b"".join(amino_acids(tokens, genetic_code_table(code)).tolist()).decode()


def is_start_codon(codon: str, code: int = DEFAULT_GENETIC_CODE) -> bool:
    """Whether ``codon`` can initiate translation under ``code`` (NCBI's start codons)."""
    check_genetic_code(code)
    return codon.upper() in START_CODONS[code]


def feature_codes(
    features: Sequence[Feature], genetic_code: int | None = None
) -> tuple[list[int], str]:
    """The genetic code of each CDS and where it came from: ``genetic_code`` when given
    (``--genetic-code``), else the feature's ``transl_table``, else 11. An annotated table
    that is not supported is an error naming the feature."""
    if genetic_code is not None:
        check_genetic_code(genetic_code, "--genetic-code")
        return [genetic_code] * len(features), f"--genetic-code {genetic_code}"
    codes = [f.transl_table or DEFAULT_GENETIC_CODE for f in features]
    annotated = sum(1 for f in features if f.transl_table)
    for f, code in zip(features, codes, strict=True):
        if code not in GENETIC_CODES:
            raise DnahnetError(
                f"{f.where}: transl_table={code} is not supported "
                f"(supported: {', '.join(map(str, sorted(GENETIC_CODES)))}); "
                "give --genetic-code to override"
            )
    if annotated == len(features):
        return codes, "annotation (transl_table)"
    if annotated == 0:
        return codes, f"default ({DEFAULT_GENETIC_CODE}; the annotation gives no transl_table)"
    return codes, f"annotation where given, else {DEFAULT_GENETIC_CODE}"
