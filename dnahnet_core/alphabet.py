"""Nucleotide encoding, the IUPAC/N policy and reverse complement.

Tokens: A=0, C=1, G=2, T=3, N=4. Lower case (soft-masked) is upper-cased; IUPAC
ambiguity codes (R Y S W K M B D H V N) and U->T map as below; any other byte is
an error that the caller reports with file, record and position.
"""

from __future__ import annotations

import numpy as np

from dnahnet_core.errors import DnahnetError

ALPHABET = "ACGTN"
VOCAB_SIZE = len(ALPHABET)
A, C, G, T, N = range(5)
INVALID = 255

IUPAC_AMBIGUOUS = "RYSWKMBDHVN"

_ENCODE = np.full(256, INVALID, dtype=np.uint8)
for _i, _base in enumerate("ACGT"):
    _ENCODE[ord(_base)] = _i
    _ENCODE[ord(_base.lower())] = _i
_ENCODE[ord("U")] = T
_ENCODE[ord("u")] = T
for _code in IUPAC_AMBIGUOUS:
    _ENCODE[ord(_code)] = N
    _ENCODE[ord(_code.lower())] = N

_DECODE = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
_COMPLEMENT_TOKEN = np.array([T, G, C, A, N], dtype=np.uint8)
_COMPLEMENT_TEXT = str.maketrans("ACGTNacgtnRYSWKMBDHVrykmbdhv", "TGCANtgcanYRSWMKVHDByrmkvhdb")


def encode(seq: str | bytes, *, where: str = "sequence") -> np.ndarray:
    """Encode nucleotides to uint8 tokens; ``where`` names the source in errors."""
    raw = seq.encode("ascii", errors="replace") if isinstance(seq, str) else bytes(seq)
    tokens = _ENCODE[np.frombuffer(raw, dtype=np.uint8)]
    bad = np.flatnonzero(tokens == INVALID)
    if bad.size:
        pos = int(bad[0])
        names = {32: "a space", 9: "a tab", 10: "a line break", 13: "a carriage return"}
        char = (repr(chr(raw[pos])) if 32 < raw[pos] < 127
                else f"({names.get(raw[pos], f'byte 0x{raw[pos]:02x}')})")
        raise DnahnetError(f"{where}: invalid nucleotide {char} at position {pos + 1}")
    return tokens


def decode(tokens) -> str:
    """Decode tokens (array-like of ints in 0..4) back to an upper-case string."""
    arr = np.asarray(tokens, dtype=np.uint8)
    return _DECODE[arr].tobytes().decode("ascii")


def reverse_complement_tokens(tokens: np.ndarray) -> np.ndarray:
    return _COMPLEMENT_TOKEN[np.asarray(tokens, dtype=np.uint8)[::-1]]


def reverse_complement(seq: str) -> str:
    return seq.translate(_COMPLEMENT_TEXT)[::-1]


def normalise(seq: str, *, where: str = "sequence") -> str:
    """Upper-case and map IUPAC codes to N, validating like ``encode``."""
    return decode(encode(seq, where=where))
