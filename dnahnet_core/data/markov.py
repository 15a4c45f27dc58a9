"""Order-k Markov models of nucleotides: the trivial baseline beside every bits-per-nucleotide.

A language model's bits per nucleotide means little alone: uniform guessing over A/C/G/T
is 2 bits, and a Markov chain that knows only the genome's k-mer frequencies already does
better than an undertrained model. ``MarkovModel`` is that chain (add-one smoothing,
counted on both strands); ``split_baselines`` fits it on a prepared dataset's training
split and scores the fragments that ``dnahnet evaluate`` and training's validation score
(``dataset_baselines``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from dnahnet_core.alphabet import N, reverse_complement_tokens

MARKOV_ORDER = 5  # k of the baseline printed beside bits per nucleotide (6-mer counts)
FIT_NUCLEOTIDES = 16_000_000  # a seeded sample of the training split is enough for 4**6 counts


class MarkovModel:
    """Order-k Markov model of nucleotides with add-one smoothing, counted on both strands.

    ``log_probs(tokens)``: natural-log P(x_t | previous k bases) per position, using the
    longest context available (fewer bases at the start and after an N); NaN at N.
    """

    def __init__(self, order: int) -> None:
        if order < 0:
            raise ValueError("order must be >= 0")
        self.order = order
        self.counts = [np.zeros(4 ** (j + 1), dtype=np.int64) for j in range(order + 1)]
        self.bases = 0

    def fit(self, pieces: Iterable[np.ndarray]) -> MarkovModel:
        for piece in pieces:
            for strand in (piece, reverse_complement_tokens(piece)):
                self.bases += int((strand != N).sum())
                for j in range(self.order + 1):
                    codes, valid = kmer_codes(strand, j + 1)
                    self.counts[j] += np.bincount(codes[valid], minlength=4 ** (j + 1))
        return self

    def log_probs(self, tokens: np.ndarray) -> np.ndarray:
        tokens = np.asarray(tokens)
        length = len(tokens)
        out = np.full(length, np.nan)
        if not length:
            return out
        is_n = tokens == N
        last_n = np.maximum.accumulate(np.where(is_n, np.arange(length), -1))
        previous_n = np.concatenate(([-1], last_n[:-1]))
        context = np.minimum(self.order, np.arange(length) - previous_n - 1)
        for j in range(self.order + 1):
            table = self.counts[j].reshape(-1, 4) + 1.0
            table = np.log(table / table.sum(axis=1, keepdims=True)).ravel()
            where = np.flatnonzero((context == j) & ~is_n)
            if where.size:
                codes, _ = kmer_codes(tokens, j + 1)
                out[where] = table[codes[where - j]]
        return out

    def truncated(self, order: int) -> MarkovModel:
        """The same counts used up to a lower order."""
        lower = MarkovModel(order)
        lower.counts = self.counts[: order + 1]
        lower.bases = self.bases
        return lower


def kmer_codes(tokens: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Base-4 code of the k-mer ending at each position t >= k-1, and whether it has no N."""
    if len(tokens) < k:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    view = np.lib.stride_tricks.sliding_window_view(np.asarray(tokens, dtype=np.int64), k)
    valid = (view != N).all(axis=1)
    codes = (np.where(view == N, 0, view) * (4 ** np.arange(k - 1, -1, -1))).sum(axis=1)
    return codes, valid


def markov_bits(model: MarkovModel, pieces: Iterable[np.ndarray],
                orders: Sequence[int]) -> tuple[dict[int, float], int]:
    """Total bits of ``pieces`` under ``model`` truncated to each of ``orders``, and the
    number of A/C/G/T positions they cover (N positions are not scored)."""
    scorers = {k: model.truncated(k) for k in orders}
    bits = dict.fromkeys(orders, 0.0)
    nucleotides = 0
    for piece in pieces:
        piece = np.asarray(piece)
        nucleotides += int((piece != N).sum())
        for k, scorer in scorers.items():
            bits[k] -= float(np.nansum(scorer.log_probs(piece))) / math.log(2)
    return bits, nucleotides


def split_baselines(data, split: str, fragments: int, **options) -> dict:
    """``dataset_baselines`` for a prepared dataset directory: counted on its training split,
    scored on the first ``fragments`` fragments of ``split`` (what ``evaluate`` scores)."""
    from dnahnet_core.data.dataset import FragmentDataset

    return dataset_baselines(FragmentDataset(data, "train"), FragmentDataset(data, split),
                             fragments, **options)


def dataset_baselines(train_set, scored_set, fragments: int, *, order: int = MARKOV_ORDER,
                      fit_nucleotides: int = FIT_NUCLEOTIDES, seed: int = 0) -> dict:
    """Bits per nucleotide of uniform, order-0 and order-``order`` Markov models on the
    first ``fragments`` fragments of ``scored_set``, the models counted on a seeded sample
    of up to ``fit_nucleotides`` nt of ``train_set`` (sequences of tokens, like
    ``FragmentDataset``).

    Empty when either set is empty. The baselines score the A/C/G/T positions;
    ``n_positions`` counts the N positions, which only the model scores.
    """
    if len(train_set) == 0 or len(scored_set) == 0:
        return {}
    sample, total = [], 0
    for i in np.random.default_rng(seed).permutation(len(train_set)):
        if total >= fit_nucleotides:
            break
        sample.append(np.asarray(train_set[int(i)]))
        total += len(sample[-1])
    model = MarkovModel(order).fit(sample)
    pieces = [np.asarray(scored_set[i]) for i in range(min(fragments, len(scored_set)))]
    bits, nucleotides = markov_bits(model, pieces, sorted({0, order}))
    if not nucleotides:
        return {}
    return {
        "uniform": 2.0,
        "markov_order_0": bits[0] / nucleotides,
        f"markov_order_{order}": bits[order] / nucleotides,
        "markov_fit_nucleotides": int(total),
        "n_positions": sum(len(p) for p in pieces) - nucleotides,
    }


def highest_markov(baselines: dict) -> tuple[str, int]:
    """The key (``markov_order_K``) and the order K of the highest-order Markov chain among
    ``baselines``: the one a model's bits per nucleotide has to beat."""
    key = max((k for k in baselines if k.startswith("markov_order_")),
              key=lambda k: int(k.rsplit("_", 1)[1]))
    return key, int(key.rsplit("_", 1)[1])


def baseline_lines(baselines: dict, why_none: str | None = None) -> list[str]:
    """``split_baselines``' numbers as text, one line each, for logs and reports
    (``why_none``: why there are none, when there are none)."""
    if not baselines:
        why_none = why_none or "the dataset has no training split to count them on"
        return [f"baselines: none ({why_none})"]
    key, order = highest_markov(baselines)
    lines = [
        f"baselines on the same positions: uniform {baselines['uniform']:.4f}, "
        f"order-0 {baselines['markov_order_0']:.4f}, order-{order} Markov "
        f"{baselines[key]:.4f} bits per nucleotide (counted on "
        f"{baselines['markov_fit_nucleotides']:,} nt of the training split)"
    ]
    if baselines["n_positions"]:
        lines.append(f"{baselines['n_positions']:,} N positions are scored by the model only")
    return lines
