"""The Markov baselines printed beside bits per nucleotide (dnahnet_core.data.markov)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dnahnet_core.alphabet import N, encode
from dnahnet_core.data.markov import (
    MarkovModel,
    baseline_lines,
    dataset_baselines,
    markov_bits,
)


def test_counts_both_strands_with_add_one_smoothing():
    # AACG and its reverse complement CGTT: A 2, C 2, G 2, T 2 (order 0);
    # after A: A 1, C 1 (AA, AC); after C: G 2 (CG twice); after G: T 1; after T: T 1
    model = MarkovModel(1).fit([encode("AACG")])
    assert model.bases == 8
    logp = model.log_probs(encode("CGA"))
    assert logp[0] == pytest.approx(math.log(3 / 12))  # order 0 at the start
    assert logp[1] == pytest.approx(math.log(3 / 6))  # G after C: (2 + 1) / (2 + 4)
    assert logp[2] == pytest.approx(math.log(1 / 5))  # A after G: (0 + 1) / (1 + 4)


def test_an_n_is_not_scored_and_restarts_the_context():
    model = MarkovModel(2).fit([encode("ACGTACGTTTGCA" * 5)])
    tokens = encode("ACGNTAC")
    logp = model.log_probs(tokens)
    assert np.isnan(logp[3]) and not np.isnan(logp[[0, 1, 2, 4, 5, 6]]).any()
    order0 = model.truncated(0).log_probs(tokens)
    assert logp[4] == order0[4]  # T right after the N: no context
    assert logp[5] == model.truncated(1).log_probs(tokens)[5]  # A after "T": one base


def test_a_periodic_sequence_is_learned_by_order_k_not_order_0():
    period = encode("ATGGCTAAG")  # 9-periodic: 5 bases of context determine the next
    sequence = np.tile(period, 400)
    model = MarkovModel(5).fit([sequence])
    bits, nucleotides = markov_bits(model, [sequence], [0, 5])
    assert nucleotides == len(sequence)
    assert bits[5] / nucleotides < 0.05
    assert 1.8 < bits[0] / nucleotides < 2.0  # composition alone: G 3/9, A 2/9, T 2/9, ...


def test_dataset_baselines_on_real_genomes_beat_uniform_and_count_n(mycoplasma_contig):
    """Fitted on one part of M. alvi, scored on another: k-mer statistics carry over
    within a genome (order 5 < order 0 < 2 bits); N positions are left to the model."""
    tokens = encode(mycoplasma_contig)
    fragments = [tokens[i : i + 4096] for i in range(0, len(tokens) - 4096, 4096)]
    train, scored = fragments[:-8], [f.copy() for f in fragments[-8:]]
    scored[0][100:110] = N
    baselines = dataset_baselines(train, scored, fragments=8, fit_nucleotides=200_000)
    assert baselines["uniform"] == 2.0
    assert baselines["markov_order_5"] < baselines["markov_order_0"] < 2.0
    assert baselines["n_positions"] == 10
    assert 200_000 <= baselines["markov_fit_nucleotides"] < 200_000 + 4096  # a seeded sample
    assert baselines == dataset_baselines(train, scored, fragments=8, fit_nucleotides=200_000)
    assert dataset_baselines(train, scored[:3], fragments=8, fit_nucleotides=200_000) == (
        dataset_baselines(train, scored, fragments=3, fit_nucleotides=200_000))
    assert dataset_baselines([], scored, fragments=8) == {}
    line, n_line = baseline_lines(baselines)
    assert "order-5 Markov" in line and f"{baselines['markov_order_5']:.4f}" in line
    assert n_line.startswith("10 N positions")
