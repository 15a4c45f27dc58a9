"""The likelihood engine: every model call of the zero-shot tasks happens here.

Batched window scoring with prefix reuse and strand averaging (score-variants,
score-dms, essentiality), per-position outputs of windows, and per-position
predictions of sequences of any length stitched from tiles (likelihood, segments).
Window geometry (which tokens go in a window) is ``tasks.windows``.

Scoring sites (a reference window and its alternatives)
-------------------------------------------------------
    from dnahnet_core.tasks.engine import Engine, Site
    engine = Engine(model, device="auto", batch_size=16, reverse_complement=True,
                    prefix_reuse=True, chunk_sites=None, on_progress=None)
    # batch_size: sequences per forward call; chunk_sites: sites read per step of the
    # stream; on_progress(n) is called with the number of sites after each chunk
    for score in engine.score(sites):          # any iterable of Site; results in input order
        score.delta      # np.float64 [n_alt]: mean of the strands (forward only without RC)
        score.forward    # [n_alt]  log P(alt window) - log P(ref window), forward strand
        score.reverse    # [n_alt] the same on the reverse-complemented windows, or None
        score.reference_ll, score.alternative_ll   # forward-strand window totals
        score.key        # whatever you put in Site.key

``Site(reference, alternatives, key=None)``: uint8 token arrays (alphabet.encode). The
score of an alternative is the sum of log P(x_t | x_<t) over *all* positions of its
window minus the same sum over the reference window (windows may differ in length;
callers that want equal lengths build them so, see tasks.windows.substituted_window).

Reuse of work, exact for a causal model:

* the reference window of a site is computed once for all its alternatives;
* the positions before the first position where any allele differs (the shared prefix
  P) have identical log-probabilities in every allele: the prefix is run once with
  ``return_state=True`` and each allele continues from the cached state, so only the
  positions from P on are computed per allele. The prefix log-probabilities are still
  summed, so the totals are full-window totals;
* the reverse strand is scored on reverse-complemented windows, whose shared prefix is
  the reverse complement of the part after the last differing position;
* sites are sorted by shared-prefix length and batched; a batch runs the shortest prefix
  of its members (sites centred the same way have the same prefix, so nothing is lost
  for them); alleles are right-padded to a common length inside a batch (the model is
  causal, so padding never changes the valid positions).

``Engine(..., prefix_reuse=False)`` computes every allele as two full windows (reference
and alternative, the reference recomputed per alternative): the naive method that tests
and the benchmark compare against.

Per-position outputs (likelihood, segments)
-------------------------------------------
    for out in forward_windows(model, windows, device="auto", batch_size=8, hidden_of=()):
        out.log_probs        # np.float32 [L]: log P(x_t | x_<t)
        out.boundary_prob    # list over stages (outer -> inner) of np.float32 [L]
        out.boundary_mask    # list over stages of bool [L]
        out.hidden           # per module of ``hidden_of``: its output for this window
                             # (np.float32, the window's row of the padded batch)

    p = stitched_predictions(model, tokens, context=8192, stride=None, batch_size=8)
    p.log_probs [L], p.boundary_prob [stages, L], p.boundary_mask [stages, L]

``stitched_predictions`` runs the tiles of ``windows.plan_tiles`` (every kept position
has at least ``context`` nucleotides of left context) and keeps each tile's kept range;
memory is one batch of tiles plus a few numbers per position.

Whole-sequence totals: ``sequence_log_likelihoods(model, seqs, device, batch_size)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import islice

import numpy as np
import torch

from dnahnet_core.alphabet import N, reverse_complement_tokens
from dnahnet_core.device import resolve_device
from dnahnet_core.tasks.windows import plan_tiles


@dataclass
class Site:
    reference: np.ndarray
    alternatives: Sequence[np.ndarray]
    key: object = None


@dataclass
class SiteScore:
    key: object
    forward: np.ndarray
    reverse: np.ndarray | None
    reference_ll: float
    alternative_ll: np.ndarray

    @property
    def delta(self) -> np.ndarray:
        if self.reverse is None:
            return self.forward
        return (self.forward + self.reverse) / 2


@dataclass
class WindowOutput:
    log_probs: np.ndarray
    boundary_prob: list[np.ndarray] = field(default_factory=list)
    boundary_mask: list[np.ndarray] = field(default_factory=list)
    hidden: list[np.ndarray] = field(default_factory=list)


def _device(device) -> torch.device:
    return device if isinstance(device, torch.device) else resolve_device(device or "auto")


def _pad(rows: Sequence[np.ndarray], device: torch.device) -> tuple[torch.Tensor, np.ndarray]:
    lengths = np.array([len(r) for r in rows])
    batch = np.full((len(rows), max(1, int(lengths.max()))), N, dtype=np.int64)
    for i, row in enumerate(rows):
        batch[i, : len(row)] = row
    return torch.from_numpy(batch).to(device), lengths


def _token_log_probs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def _masked_sums(per_position: torch.Tensor, lengths: np.ndarray) -> np.ndarray:
    values = per_position.double().cpu().numpy()
    return np.array([values[i, : lengths[i]].sum() for i in range(len(lengths))])


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if diff.size else n


class Engine:
    """Scores sites on a model; see the module docstring."""

    def __init__(
        self,
        model,
        device="auto",
        *,
        batch_size: int = 16,
        reverse_complement: bool = False,
        prefix_reuse: bool = True,
        chunk_sites: int | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.device = _device(device)
        self.model = model.to(self.device).eval()
        self.batch_size = max(1, batch_size)
        self.reverse_complement = reverse_complement
        self.prefix_reuse = prefix_reuse
        self.chunk_sites = chunk_sites or max(64, 8 * self.batch_size)
        self.on_progress = on_progress

    # -- public -------------------------------------------------------------------------
    def score(self, sites: Iterable[Site]) -> Iterator[SiteScore]:
        """Scores in input order; sites are read and computed in chunks (streaming)."""
        iterator = iter(sites)
        while chunk := list(islice(iterator, self.chunk_sites)):
            yield from self._score_chunk(chunk)
            if self.on_progress is not None:
                self.on_progress(len(chunk))

    # -- internals ----------------------------------------------------------------------
    def _score_chunk(self, sites: list[Site]) -> list[SiteScore]:
        strands = [[(s.reference, *s.alternatives) for s in sites]]
        if self.reverse_complement:
            strands.append(
                [tuple(reverse_complement_tokens(a) for a in alleles) for alleles in strands[0]]
            )
        totals = [self._totals(groups) for groups in strands]
        scores = []
        for i, site in enumerate(sites):
            forward = totals[0][i]
            reverse = totals[1][i] if self.reverse_complement else None
            scores.append(
                SiteScore(
                    key=site.key,
                    forward=forward[1:] - forward[0],
                    reverse=None if reverse is None else reverse[1:] - reverse[0],
                    reference_ll=float(forward[0]),
                    alternative_ll=forward[1:].copy(),
                )
            )
        return scores

    def _totals(self, sites: list[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
        """Total log-likelihood of every allele of every site (reference first)."""
        if not self.prefix_reuse:
            return self._naive_totals(sites)
        prefixes = [
            min(_common_prefix(alleles[0], a) for a in alleles[1:]) if len(alleles) > 1 else 0
            for alleles in sites
        ]
        order = sorted(range(len(sites)), key=lambda i: prefixes[i])
        totals: list[np.ndarray] = [np.zeros(len(a)) for a in sites]
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                prefix = min(prefixes[i] for i in batch)  # exact for every member
                self._score_shared_prefix(
                    [sites[i] for i in batch], prefix, [totals[i] for i in batch]
                )
        return totals

    def _score_shared_prefix(self, sites, prefix: int, totals: list[np.ndarray]) -> None:
        state = None
        if prefix > 0:
            tokens = torch.from_numpy(np.stack([s[0][:prefix] for s in sites]).astype(np.int64))
            tokens = tokens.to(self.device)
            out = self.model(tokens, return_state=True)
            prefix_ll = _token_log_probs(out.logits, tokens).double().sum(-1).cpu().numpy()
            for t, value in zip(totals, prefix_ll, strict=True):
                t += value
            state = out.state
        rows = [
            (i, j, alleles[j][prefix:])
            for i, alleles in enumerate(sites)
            for j in range(len(alleles))
        ]
        rows = [r for r in rows if len(r[2])]
        rows.sort(key=lambda r: len(r[2]))
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            tokens, lengths = _pad([r[2] for r in chunk], self.device)
            if state is None:
                logits = self.model(tokens).logits
            else:
                index = torch.tensor([r[0] for r in chunk], device=self.device)
                logits = self.model(tokens, state=state.select(index)).logits
            sums = _masked_sums(_token_log_probs(logits, tokens), lengths)
            for (i, j, _), value in zip(chunk, sums, strict=True):
                totals[i][j] += value

    def _naive_totals(self, sites) -> list[np.ndarray]:
        """Each alternative as two full windows; the reference total is the last recomputation."""
        jobs = []
        for i, alleles in enumerate(sites):
            for j in range(1, len(alleles)):
                jobs += [(i, 0, alleles[0]), (i, j, alleles[j])]
            if len(alleles) == 1:
                jobs.append((i, 0, alleles[0]))
        values = sequence_log_likelihoods(
            self.model, [job[2] for job in jobs], self.device, self.batch_size, sort=False
        )
        totals = [np.zeros(len(a)) for a in sites]
        for (i, j, _), value in zip(jobs, values, strict=True):
            totals[i][j] = value
        return totals


def sequence_log_likelihoods(
    model,
    sequences: Sequence[np.ndarray],
    device="auto",
    batch_size: int = 16,
    *,
    sort: bool = True,
) -> np.ndarray:
    """sum_t log P(x_t | x_<t) of each token sequence, full forwards, batched."""
    device = _device(device)
    order = (
        np.argsort([len(s) for s in sequences], kind="stable")
        if sort
        else np.arange(len(sequences))
    )
    result = np.zeros(len(sequences))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            tokens, lengths = _pad([sequences[i] for i in idx], device)
            logits = model(tokens).logits
            result[idx] = _masked_sums(_token_log_probs(logits, tokens), lengths)
    return result


def forward_windows(
    model,
    windows: Sequence[np.ndarray],
    device="auto",
    batch_size: int = 8,
    *,
    hidden_of: Sequence[torch.nn.Module] = (),
) -> Iterator[WindowOutput]:
    """Per-position log-probabilities and per-stage boundaries of each window, in order;
    with ``hidden_of``, also the output of those modules of the model (forward hooks)."""
    device = _device(device)
    captured: dict[int, torch.Tensor] = {}
    hooks = [
        module.register_forward_hook(partial(_keep_output, captured, k))
        for k, module in enumerate(hidden_of)
    ]
    try:
        yield from _forward_windows(model, windows, device, batch_size, captured, len(hooks))
    finally:
        for hook in hooks:
            hook.remove()


def _keep_output(store: dict, key: int, module, inputs, output) -> None:
    store[key] = output[0] if isinstance(output, tuple) else output


def _forward_windows(model, windows, device, batch_size, captured, n_hidden):
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            rows = windows[start : start + batch_size]
            tokens, lengths = _pad(rows, device)
            mask = (
                torch.arange(tokens.shape[1], device=device)[None, :]
                < torch.from_numpy(lengths).to(device)[:, None]
            )
            out = model(tokens, mask=mask)
            logp = _token_log_probs(out.logits, tokens).float().cpu().numpy()
            stages = list(getattr(out, "stages", None) or [])
            probs = [s.boundary_prob.float().cpu().numpy() for s in stages]
            masks = [s.boundary_mask.cpu().numpy() for s in stages]
            hidden = [captured.pop(k).float().cpu().numpy() for k in range(n_hidden)]
            for i, n in enumerate(lengths):
                yield WindowOutput(
                    log_probs=logp[i, :n],
                    boundary_prob=[p[i, :n] for p in probs],
                    boundary_mask=[m[i, :n] for m in masks],
                    hidden=[h[i] for h in hidden],
                )


@dataclass
class Predictions:
    log_probs: np.ndarray  # [L] float32, log P(x_t | x_<t)
    boundary_prob: np.ndarray  # [stages, L] float32
    boundary_mask: np.ndarray  # [stages, L] bool


def stitched_predictions(
    model,
    tokens: np.ndarray,
    *,
    context: int = 8192,
    stride: int | None = None,
    batch_size: int = 8,
    device="auto",
    on_progress: Callable[[int], None] | None = None,
) -> Predictions:
    """Per-position predictions of a sequence of any length (see the module docstring);
    ``on_progress(n)`` is called with the number of positions kept after each tile."""
    length = int(tokens.shape[0])
    tiles = plan_tiles(length, context, stride or context) if length else []
    stages = model.config.num_stages
    result = Predictions(
        np.zeros(length, dtype=np.float32),
        np.zeros((stages, length), dtype=np.float32),
        np.zeros((stages, length), dtype=bool),
    )
    views = [tokens[t.start : t.end] for t in tiles]
    for t, out in zip(tiles, forward_windows(model, views, device, batch_size), strict=True):
        keep = slice(t.keep_start - t.start, t.keep_end - t.start)
        result.log_probs[t.keep_start : t.keep_end] = out.log_probs[keep]
        for s in range(stages):
            result.boundary_prob[s, t.keep_start : t.keep_end] = out.boundary_prob[s][keep]
            result.boundary_mask[s, t.keep_start : t.keep_end] = out.boundary_mask[s][keep]
        if on_progress is not None:
            on_progress(t.keep_end - t.keep_start)
    return result
