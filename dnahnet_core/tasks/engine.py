"""The likelihood engine: every model call of the zero-shot tasks happens here.

Batched window scoring with prefix reuse and strand averaging (score-variants,
score-dms, essentiality), per-position outputs of windows, per-position predictions
of sequences of any length stitched from tiles (likelihood, segments), and streamed
substitution scores along whole sequences (essentiality ``--genome-stream``). Window
geometry (which tokens go in a window) is ``tasks.windows``.

Scoring sites (a reference window and its alternatives)
-------------------------------------------------------
    from dnahnet_core.tasks.engine import Engine, Site
    with Engine(model, device="auto", batch_size=None, reverse_complement=True,
                prefix_reuse=True, downstream=None, precision="fp32", workers=1,
                chunk_sites=None, on_progress=None) as engine:
        for score in engine.score(sites):      # any iterable of Site; results in input order
            score.delta      # np.float64 [n_alt]: mean of the strands (forward only without RC)
            score.forward    # [n_alt]  log P(alt window) - log P(ref window), forward strand
            score.reverse    # [n_alt] the same on the reverse-complemented windows, or None
            score.reference_ll, score.alternative_ll   # forward-strand window totals
            score.key        # whatever you put in Site.key

``batch_size``: sequences per forward call (None: on a CPU as many as fill ``CPU_TOKENS``
positions, i.e. one long window, where batching long windows measured slower, but short
continuations batched; ``GPU_BATCH_SIZE`` on a GPU); ``chunk_sites``: sites
per unit of work (a worker's task; results come back chunk by chunk); ``on_progress(n)``
is called with the number of sites after each chunk.

``Site(reference, alternatives, key=None, changed=None)``: uint8 token arrays
(alphabet.encode). The score of an alternative is the sum of log P(x_t | x_<t) over
*all* positions of its window minus the same sum over the reference window (windows may
differ in length; callers that want equal lengths build them so, see
tasks.windows.substituted_window). ``changed``: per allele, reference first, the
half-open range ``[start, end)`` of its window that holds the change; None derives one
range for all alleles from where they differ (right for substitutions; callers with
indels pass it). It is read only by ``downstream``.

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
  for them); alleles are sorted by length and right-padded to a common length inside a
  batch (the model is causal, so padding never changes the valid positions).

``Engine(..., prefix_reuse=False)`` computes every allele as two full windows (reference
and alternative, the reference recomputed per alternative): the naive method that tests
and the benchmark compare against.

Opt-in approximations and speed (the default is the exact fp32 protocol):

* ``downstream=N``: each allele's window is summed only up to N nt after the changed
  ranges (forward: after the end of the longest; on the reverse strand: N nt past their
  start in reverse-complement order), with the full left context; the positions beyond
  are not computed. Every allele sums the same number of positions (equal-length
  windows), so an indel's score is not a count of its extra or missing bases. Equal to
  the exact protocol when N >= the window length.
* ``precision="bf16"``: the model runs under bf16 autocast (``train.precision``).
* ``workers=N`` (CPU): N processes, each with one torch thread and a copy of the model,
  score whole chunks; the chunks and their computation are those of one process, so the
  scores are the same, in input order. ``ModelWorkers`` is the pool; pass one as
  ``workers=`` to share it between calls. The processes are spawned (a fresh
  interpreter imports torch, ~2 s each): a script that uses them needs the usual
  ``if __name__ == "__main__":`` guard.

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

``boundaries_only=True`` (both functions; segments uses it) runs the encoders and routers
alone (``DnaLM.boundaries``: the same boundaries, about half the work); ``log_probs`` is
then None.

``stitched_predictions`` runs the tiles of ``windows.plan_tiles`` (every kept position
has at least ``context`` nucleotides of left context) and keeps each tile's kept range;
memory is one batch of tiles plus a few numbers per position.

Whole-sequence totals: ``sequence_log_likelihoods(model, seqs, device, batch_size)``.

Streamed substitutions (``--genome-stream`` of essentiality and score-variants):
``stream_substitutions(model, sequence, [Substitution(start, replacement, key, length)],
tile=, downstream=, reverse_complement=)`` → ``SubstitutionScore`` per substitution
(``length``: the reference span replaced, for indels; see its docstring).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import groupby, islice

import numpy as np
import torch

from dnahnet_core.alphabet import N, reverse_complement_tokens
from dnahnet_core.device import keep_freed_memory, resolve_device
from dnahnet_core.errors import DnahnetError
from dnahnet_core.interrupts import workers_ignore_ctrl_c
from dnahnet_core.model_source import ready_model
from dnahnet_core.tasks.windows import plan_tiles
from dnahnet_core.train.precision import autocast

PRECISIONS = ("fp32", "bf16")  # of the scoring commands: exact fp32 unless bf16 is asked for
GPU_BATCH_SIZE = 64
CPU_TOKENS = 4096  # positions per forward call on a CPU when no batch size is given
STREAM_PIECE = 16384  # longest reference piece per model call of a stream (bounds memory)


def default_batch_size(device: torch.device) -> int:
    """Windows per forward call of equal-length tiles: 1 on a CPU (measured: batching long
    windows only adds cache misses there, docs/benchmarks.md), GPU_BATCH_SIZE on a GPU."""
    return GPU_BATCH_SIZE if device.type == "cuda" else 1


def _groups(sizes: Sequence[int], rows: int, tokens: int | None) -> Iterator[tuple[int, int]]:
    """[start, stop) of consecutive groups: at most ``rows`` items and, with a ``tokens``
    budget, at most that many positions per call (rows x the longest; at least one)."""
    start = 0
    while start < len(sizes):
        stop, longest = start + 1, sizes[start]
        while stop < len(sizes) and stop - start < rows:
            wider = max(longest, sizes[stop])
            if tokens is not None and (stop - start + 1) * wider > tokens:
                break
            stop, longest = stop + 1, wider
        yield start, stop
        start = stop


def check_scoring_options(
    device: str | torch.device = "auto", *, precision: str = "fp32", workers: int = 1,
    downstream: int | None = None,
) -> None:
    """The options every scoring command shares, checked before the model is loaded."""
    device = resolve_device(device)
    if precision not in PRECISIONS:
        raise DnahnetError(f"--precision {precision}: expected one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DnahnetError("--precision bf16: this GPU does not support bfloat16")
    if workers < 1:
        raise DnahnetError(f"--workers {workers}: must be >= 1")
    if workers > 1 and device.type != "cpu":
        raise DnahnetError(f"--workers {workers}: worker processes are for CPU runs (--device cpu)")
    if downstream is not None and downstream < 1:
        raise DnahnetError(f"--downstream {downstream}: must be >= 1")


@dataclass
class Site:
    reference: np.ndarray
    alternatives: Sequence[np.ndarray]
    key: object = None
    changed: Sequence[tuple[int, int]] | None = None  # per allele, reference first


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
    log_probs: np.ndarray | None
    boundary_prob: list[np.ndarray] = field(default_factory=list)
    boundary_mask: list[np.ndarray] = field(default_factory=list)
    hidden: list[np.ndarray] = field(default_factory=list)


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


def _tensor(tokens: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64))[None].to(device)


# -- worker processes ---------------------------------------------------------------------
_WORKER_MODEL: list = []  # in a worker process: its copy of the model


def _start_worker(model) -> None:
    keep_freed_memory()
    torch.set_num_threads(1)
    _WORKER_MODEL.append(model.eval())


def _run_in_worker(task):
    function, args = task
    return function(_WORKER_MODEL[0], *args)


class ModelWorkers:
    """``map(function, tasks)`` → ``function(model, *task)`` for every task, in order.

    With ``n == 1`` it runs here; otherwise in ``n`` spawned processes (CPU only), each
    holding a copy of the model and one torch thread. At most ``2 n`` tasks are in
    flight, so an input stream is read as the results are consumed. A context manager:
    the processes end on exit, on an error and on Ctrl-C.
    """

    def __init__(self, model, n: int = 1) -> None:
        self.model, self.n, self._pool = model, max(1, n), None
        if self.n > 1:
            import torch.multiprocessing as mp

            with workers_ignore_ctrl_c():
                self._pool = mp.get_context("spawn").Pool(
                    self.n, initializer=_start_worker, initargs=(model.cpu(),)
                )

    def map(self, function: Callable, tasks: Iterable[tuple]) -> Iterator:
        if self._pool is None:
            for task in tasks:
                yield function(self.model, *task)
            return
        pending: deque = deque()
        for task in tasks:
            pending.append(self._pool.apply_async(_run_in_worker, ((function, task),)))
            if len(pending) >= 2 * self.n:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> ModelWorkers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def _workers_for(model, workers: int | ModelWorkers) -> Iterator[ModelWorkers]:
    """The pool given, or a new one owned by this block."""
    if isinstance(workers, ModelWorkers):
        yield workers
        return
    with ModelWorkers(model, workers) as pool:
        yield pool


# -- sites --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Scoring:
    """How sites are scored (picklable: it travels to worker processes)."""

    device: torch.device
    batch_size: int  # rows per forward call at most
    tokens: int | None  # positions per forward call at most (None: no limit)
    reverse_complement: bool
    prefix_reuse: bool
    downstream: int | None
    precision: str


class Engine:
    """Scores sites on a model; see the module docstring."""

    def __init__(
        self,
        model,
        device="auto",
        *,
        batch_size: int | None = None,
        reverse_complement: bool = False,
        prefix_reuse: bool = True,
        downstream: int | None = None,
        precision: str = "fp32",
        workers: int | ModelWorkers = 1,
        chunk_sites: int | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        n_workers = workers.n if isinstance(workers, ModelWorkers) else workers
        check_scoring_options(device, precision=precision, workers=n_workers,
                              downstream=downstream)
        self.model, device = ready_model(model, device)
        tokens = None
        if batch_size is None:
            batch_size = GPU_BATCH_SIZE
            tokens = CPU_TOKENS if device.type == "cpu" else None
        self.settings = _Scoring(
            device, max(1, batch_size), tokens, reverse_complement, prefix_reuse, downstream,
            precision,
        )
        # CPU: small chunks balance worker processes and keep the progress bar moving
        self.chunk_sites = chunk_sites or (16 if device.type == "cpu" else 8 * batch_size)
        self.on_progress = on_progress
        self._workers = workers
        self._pool: ModelWorkers | None = workers if isinstance(workers, ModelWorkers) else None
        self._owns_pool = False

    @property
    def device(self) -> torch.device:
        return self.settings.device

    @property
    def batch_size(self) -> int:
        return self.settings.batch_size

    # -- public -------------------------------------------------------------------------
    def score(self, sites: Iterable[Site]) -> Iterator[SiteScore]:
        """Scores in input order; sites are read and computed in chunks (streaming)."""
        if self._pool is None:
            self._pool, self._owns_pool = ModelWorkers(self.model, self._workers), True
        iterator = iter(sites)
        chunks = iter(lambda: list(islice(iterator, self.chunk_sites)), [])
        tasks = ((self.settings, chunk) for chunk in chunks)
        for scores in self._pool.map(_score_chunk, tasks):
            yield from scores
            if self.on_progress is not None:
                self.on_progress(len(scores))

    def close(self) -> None:
        """Ends the worker processes this engine started (none with one worker)."""
        if self._owns_pool and self._pool is not None:
            self._pool.close()
            self._pool, self._owns_pool = None, False

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _score_chunk(model, settings: _Scoring, sites: list[Site]) -> list[SiteScore]:
    device = settings.device
    strands = [[(s.reference, *s.alternatives) for s in sites]]
    stops: list[list[list[int] | None]] = [[_stops(s, settings.downstream, False) for s in sites]]
    if settings.reverse_complement:
        strands.append(
            [tuple(reverse_complement_tokens(a) for a in alleles) for alleles in strands[0]]
        )
        stops.append([_stops(s, settings.downstream, True) for s in sites])
    with torch.inference_mode(), autocast(device, settings.precision):
        totals = [
            _totals(model, settings, groups, limits)
            for groups, limits in zip(strands, stops, strict=True)
        ]
    scores = []
    for i, site in enumerate(sites):
        forward = totals[0][i]
        reverse = totals[1][i] if settings.reverse_complement else None
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


def changed_ranges(site: Site) -> list[tuple[int, int]]:
    """Per allele (reference first) the ``[start, end)`` of its window holding the change:
    ``site.changed``, or where any alternative differs from the reference (equal lengths)."""
    if site.changed is not None:
        return [(int(a), int(b)) for a, b in site.changed]
    reference = site.reference
    first, last = len(reference), 0
    for alt in site.alternatives:
        if len(alt) != len(reference):
            raise ValueError("alleles of different lengths need Site.changed")
        diff = np.flatnonzero(alt != reference)
        if diff.size:
            first, last = min(first, int(diff[0])), max(last, int(diff[-1]) + 1)
    first = min(first, last)
    return [(first, last)] * (1 + len(site.alternatives))


def _stops(site: Site, downstream: int | None, reverse: bool) -> list[int] | None:
    """Per allele the number of leading positions summed (None: all of them).

    Every allele sums the same number of positions, as the exact protocol's equal-length
    windows do (else an insertion pays for its extra bases and a deletion is paid for its
    missing ones): forward, up to the end of the longest changed range and ``downstream``
    nt more; reverse, ``downstream`` nt past the start of the changed ranges."""
    if downstream is None:
        return None
    alleles = (site.reference, *site.alternatives)
    ranges = changed_ranges(site)
    if reverse:
        start = min(start for start, _ in ranges)
        return [min(len(a), len(a) - start + downstream) for a in alleles]
    end = max(end for _, end in ranges)
    return [min(len(a), end + downstream) for a in alleles]


def _totals(model, settings: _Scoring, sites, stops) -> list[np.ndarray]:
    """Total log-likelihood of every allele of every site (reference first), over its
    first ``stops`` positions (all of them when ``stops`` is None)."""
    if stops is None or stops[0] is None:
        stops = [[len(a) for a in alleles] for alleles in sites]
    if not settings.prefix_reuse:
        return _naive_totals(model, settings, sites, stops)
    prefixes = [
        min(min(_common_prefix(alleles[0], a) for a in alleles[1:]), *limit)
        if len(alleles) > 1 else 0
        for alleles, limit in zip(sites, stops, strict=True)
    ]
    order = sorted(range(len(sites)), key=lambda i: prefixes[i])
    totals: list[np.ndarray] = [np.zeros(len(a)) for a in sites]
    sizes = [max(len(a) for a in sites[i]) for i in order]
    for start, stop in _groups(sizes, settings.batch_size, settings.tokens):
        batch = order[start:stop]
        prefix = min(prefixes[i] for i in batch)  # exact for every member
        _score_shared_prefix(
            model, settings, [sites[i] for i in batch], [stops[i] for i in batch], prefix,
            [totals[i] for i in batch],
        )
    return totals


def _score_shared_prefix(model, settings: _Scoring, sites, stops, prefix: int, totals) -> None:
    device = settings.device
    state = None
    if prefix > 0:
        tokens = torch.from_numpy(np.stack([s[0][:prefix] for s in sites]).astype(np.int64))
        tokens = tokens.to(device)
        out = model(tokens, return_state=True)
        prefix_ll = _token_log_probs(out.logits, tokens).double().sum(-1).cpu().numpy()
        for t, value in zip(totals, prefix_ll, strict=True):
            t += value
        state = out.state
    rows = [
        (i, j, alleles[j][prefix : stops[i][j]])
        for i, alleles in enumerate(sites)
        for j in range(len(alleles))
    ]
    rows = [r for r in rows if len(r[2])]
    rows.sort(key=lambda r: len(r[2]))
    for start, stop in _groups([len(r[2]) for r in rows], settings.batch_size, settings.tokens):
        chunk = rows[start:stop]
        tokens, lengths = _pad([r[2] for r in chunk], device)
        if state is None:
            logits = model(tokens).logits
        else:
            index = torch.tensor([r[0] for r in chunk], device=device)
            logits = model(tokens, state=state.select(index)).logits
        sums = _masked_sums(_token_log_probs(logits, tokens), lengths)
        for (i, j, _), value in zip(chunk, sums, strict=True):
            totals[i][j] += value


def _naive_totals(model, settings: _Scoring, sites, stops) -> list[np.ndarray]:
    """Each alternative as two full windows; the reference total is the last recomputation."""
    jobs = []
    for i, alleles in enumerate(sites):
        for j in range(1, len(alleles)):
            jobs += [(i, 0, alleles[0][: stops[i][0]]), (i, j, alleles[j][: stops[i][j]])]
        if len(alleles) == 1:
            jobs.append((i, 0, alleles[0][: stops[i][0]]))
    values = sequence_log_likelihoods(
        model, [job[2] for job in jobs], settings.device, settings.batch_size, sort=False
    )
    totals = [np.zeros(len(a)) for a in sites]
    for (i, j, _), value in zip(jobs, values, strict=True):
        totals[i][j] = value
    return totals


# -- substitutions along a whole sequence (genome stream) ---------------------------------
@dataclass(frozen=True)
class Substitution:
    """``replacement`` written over ``[start, start + span)`` of a sequence; ``length``
    None: ``span = len(replacement)`` (a substitution), else the replaced reference length
    (an indel when they differ)."""

    start: int
    replacement: np.ndarray
    key: object = None
    length: int | None = None

    @property
    def span(self) -> int:
        return len(self.replacement) if self.length is None else self.length


@dataclass
class SubstitutionScore:
    key: object
    forward: float
    reverse: float | None

    @property
    def delta(self) -> float:
        return self.forward if self.reverse is None else (self.forward + self.reverse) / 2


def stream_substitutions(
    model,
    sequence: np.ndarray,
    substitutions: Sequence[Substitution],
    *,
    tile: int = 8192,
    downstream: int = 4096,
    reverse_complement: bool = True,
    precision: str = "fp32",
    device="auto",
    workers: int | ModelWorkers = 1,
    on_progress: Callable[[int], None] | None = None,
) -> list[SubstitutionScore]:
    """Score substitutions on one sequence with left-context states computed once per
    stretch of the sequence, not once per substitution (an opt-in approximation).

    Each strand is read in stretches: a stretch starts ``tile // 4`` nt before the
    first substitution it holds (or at the sequence start) and holds the substitutions
    that start within ``tile`` nt of its beginning. Along a stretch the model runs once
    on the reference, continued from one substitution to the next
    (``return_state=True``); at each substitution the mutant continues from the
    reference state over the replacement and what follows its span (substitutions at one
    start run as one batch from one state). Score = the mutant's sum minus the
    reference's, each over the same number of positions from the start: the longer of
    replacement and span, and ``downstream`` nt more (so an indel is not charged or
    credited for its length, as in the windowed protocol's equal-length windows). Every
    substitution sees between ``tile // 4`` and ``tile`` nt of left context (less near a
    linear sequence's start). When one stretch holds everything and the downstream
    reaches the end, this is the log-likelihood ratio of the mutant and the reference
    sequence cut to the shorter of their lengths. The reverse strand reads the reverse
    complement. Results follow the input order.
    """
    n_workers = workers.n if isinstance(workers, ModelWorkers) else workers
    check_scoring_options(device, precision=precision, workers=n_workers, downstream=downstream)
    if tile < 4:
        raise ValueError("tile must be >= 4")
    model, device = ready_model(model, device)
    length = len(sequence)
    strands = [(sequence, list(substitutions))]
    if reverse_complement:
        flipped = [
            Substitution(length - s.start - s.span,
                         reverse_complement_tokens(s.replacement), s.key, s.length)
            for s in substitutions
        ]
        strands.append((reverse_complement_tokens(sequence), flipped))
    tasks = []
    for strand, (tokens, subs) in enumerate(strands):
        for offset, members in _stretches(length, subs, tile):
            end = max(m.start + _reach(m, downstream) for m in members)
            local = [
                Substitution(m.start - offset, m.replacement, (strand, m.key), m.length)
                for m in members
            ]
            tasks.append((device, precision, downstream, tokens[offset : min(end, length)], local))
    deltas: dict[object, list[float | None]] = {}
    with _workers_for(model, workers) as pool:
        for results, task in zip(pool.map(_stream_stretch, tasks), tasks, strict=True):
            for (strand, key), value in results:
                deltas.setdefault(key, [None, None])[strand] = value
            if on_progress is not None:
                on_progress(len(task[4]))
    return [
        SubstitutionScore(s.key, deltas[s.key][0], deltas[s.key][1] if reverse_complement
                          else None)
        for s in substitutions
    ]


def _stretches(length: int, subs: Sequence[Substitution], tile: int):
    """(offset, substitutions) of each stretch, substitutions sorted by start."""
    ordered = sorted(subs, key=lambda s: s.start)
    warmup = tile // 4
    i = 0
    while i < len(ordered):
        offset = max(0, ordered[i].start - warmup)
        j = i
        while j < len(ordered) and (j == i or ordered[j].start - offset <= tile):
            j += 1
        yield offset, ordered[i:j]
        i = j


def _reach(sub: Substitution, downstream: int) -> int:
    """Positions summed from a substitution's start, in the mutant and the reference
    alike: the longer of its replacement and its span, and ``downstream`` nt more."""
    return max(len(sub.replacement), sub.span) + downstream


def _stream_stretch(model, device, precision, downstream, tokens, subs):
    """[((strand, key), mutant sum - reference sum)] along one stretch (see above)."""
    reference = np.zeros(len(tokens))  # per-position reference log-probabilities
    state, done, pending = None, 0, []

    def run_reference(stop: int, keep_state: bool) -> None:
        nonlocal state, done
        while done < stop:
            end = min(stop, done + STREAM_PIECE)
            piece = _tensor(tokens[done:end], device)
            out = model(piece, state=state, return_state=keep_state or end < stop)
            reference[done:end] = _token_log_probs(out.logits, piece)[0].cpu().numpy()
            state, done = out.state, end

    with torch.inference_mode(), autocast(device, precision):
        for start, group in groupby(subs, key=lambda sub: sub.start):
            group = list(group)
            run_reference(start, keep_state=True)
            mutants, stops = [], []
            for sub in group:  # both sums over the same number of positions
                mutant = np.concatenate([sub.replacement, tokens[start + sub.span :]])
                count = min(_reach(sub, downstream), len(mutant), len(tokens) - start)
                mutants.append(mutant[:count])
                stops.append(start + count)
            batch, lengths = _pad(mutants, device)
            shared = state if len(group) == 1 or state is None else state.expand(len(group))
            out = model(batch, state=shared)
            values = _masked_sums(_token_log_probs(out.logits, batch), lengths)
            pending += [(sub.key, start, stop, value)
                        for sub, stop, value in zip(group, stops, values, strict=True)]
        run_reference(len(tokens), keep_state=False)
    return [(key, value - reference[start:stop].sum()) for key, start, stop, value in pending]


def sequence_log_likelihoods(
    model,
    sequences: Sequence[np.ndarray],
    device="auto",
    batch_size: int = 16,
    *,
    sort: bool = True,
) -> np.ndarray:
    """sum_t log P(x_t | x_<t) of each token sequence, full forwards, batched."""
    model, device = ready_model(model, device)
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
    precision: str = "fp32",
    boundaries_only: bool = False,
    depth: int | None = None,
) -> Iterator[WindowOutput]:
    """Per-position log-probabilities and per-stage boundaries of each window, in order;
    with ``hidden_of``, also the output of those modules of the model (forward hooks);
    with ``boundaries_only``, ``depth`` limits the boundaries to the outer stages."""
    model, device = ready_model(model, device)
    captured: dict[int, torch.Tensor] = {}
    hooks = [
        module.register_forward_hook(partial(_keep_output, captured, k))
        for k, module in enumerate(hidden_of)
    ]
    try:
        yield from _forward_windows(
            model, windows, device, batch_size, captured, len(hooks), precision, boundaries_only,
            depth,
        )
    finally:
        for hook in hooks:
            hook.remove()


def _keep_output(store: dict, key: int, module, inputs, output) -> None:
    store[key] = output[0] if isinstance(output, tuple) else output


def _forward_windows(model, windows, device, batch_size, captured, n_hidden, precision,
                     boundaries_only, depth):
    with torch.inference_mode(), autocast(device, precision):
        for start in range(0, len(windows), batch_size):
            rows = windows[start : start + batch_size]
            tokens, lengths = _pad(rows, device)
            mask = (
                torch.arange(tokens.shape[1], device=device)[None, :]
                < torch.from_numpy(lengths).to(device)[:, None]
            )
            if boundaries_only:
                routed, logp = _routed_in_pieces(model, tokens, mask, depth), None
            else:
                out = model(tokens, mask=mask)
                logp = _token_log_probs(out.logits, tokens).float().cpu().numpy()
                routed = [(s.boundary_prob, s.boundary_mask)
                          for s in getattr(out, "stages", None) or []]
            probs = [p.float().cpu().numpy() for p, _ in routed]
            masks = [m.cpu().numpy() for _, m in routed]
            hidden = [captured.pop(k).float().cpu().numpy() for k in range(n_hidden)]
            for i, n in enumerate(lengths):
                yield WindowOutput(
                    log_probs=None if logp is None else logp[i, :n],
                    boundary_prob=[p[i, :n] for p in probs],
                    boundary_mask=[m[i, :n] for m in masks],
                    hidden=[h[i] for h in hidden],
                )


def _routed_in_pieces(model, tokens: torch.Tensor, mask: torch.Tensor,
                      depth: int | None = None):
    """[(boundary_prob, boundary_mask)] per stage of ``model.boundaries``; rows without
    padding that are longer than ``STREAM_PIECE`` run in pieces with the routing state
    carried (the same boundaries, memory bounded by the piece, not the window)."""
    length = tokens.shape[1]
    if length <= STREAM_PIECE or not bool(mask.all()):
        stages, _ = model.boundaries(tokens, mask, depth=depth)
        return [(s.boundary_prob, s.boundary_mask) for s in stages]
    pieces, state = [], None
    for start in range(0, length, STREAM_PIECE):
        end = min(start + STREAM_PIECE, length)
        stages, state = model.boundaries(tokens[:, start:end], state=state,
                                         return_state=end < length, depth=depth)
        pieces.append([(s.boundary_prob, s.boundary_mask) for s in stages])
    return [tuple(torch.cat([p[k][i] for p in pieces], dim=1) for i in (0, 1))
            for k in range(len(pieces[0]))]


@dataclass
class Predictions:
    log_probs: np.ndarray | None  # [L] float32, log P(x_t | x_<t); None: boundaries_only
    boundary_prob: np.ndarray  # [stages, L] float32
    boundary_mask: np.ndarray  # [stages, L] bool


def stitched_predictions(model, tokens: np.ndarray, **options) -> Predictions:
    """Per-position predictions of a sequence of any length (see the module docstring);
    the options are those of ``stitched_predictions_each``."""
    (predictions,) = stitched_predictions_each(model, [tokens], **options)
    return predictions


def stitched_predictions_each(
    model,
    sequences: Sequence[np.ndarray],
    *,
    context: int = 8192,
    stride: int | None = None,
    batch_size: int = 8,
    device="auto",
    precision: str = "fp32",
    workers: int | ModelWorkers = 1,
    on_progress: Callable[[int], None] | None = None,
    boundaries_only: bool = False,
    depth: int | None = None,
) -> Iterator[Predictions]:
    """``stitched_predictions`` of each sequence, in order, each yielded as soon as it is
    whole. The batches of tiles of all sequences go through one stream of tasks, so
    ``workers`` stay busy across short sequences (a genome's contigs); a batch holds
    tiles of one sequence. ``on_progress(n)``: the positions kept after each tile.
    ``depth`` (with ``boundaries_only``): the outer stages only, the others stay 0."""
    n_workers = workers.n if isinstance(workers, ModelWorkers) else workers
    check_scoring_options(device, precision=precision, workers=n_workers)
    model, device = ready_model(model, device)
    stages = model.config.num_stages
    plans = [plan_tiles(len(tokens), context, stride or context) if len(tokens) else []
             for tokens in sequences]
    tasks, owners = [], []  # owners[k]: (sequence, its tiles) of task k
    for index, (tokens, tiles) in enumerate(zip(sequences, plans, strict=True)):
        for i in range(0, len(tiles), batch_size):
            batch = tiles[i : i + batch_size]
            tasks.append((device, precision, batch_size, boundaries_only, depth,
                          [tokens[t.start : t.end] for t in batch]))
            owners.append((index, batch))
    left = [(len(tiles) + batch_size - 1) // batch_size for tiles in plans]
    results: dict[int, Predictions] = {}
    ready = 0  # the next sequence to yield

    def result_of(index: int) -> Predictions:
        if index not in results:
            length = len(sequences[index])
            results[index] = Predictions(
                None if boundaries_only else np.zeros(length, dtype=np.float32),
                np.zeros((stages, length), dtype=np.float32),
                np.zeros((stages, length), dtype=bool),
            )
        return results[index]

    def whole() -> Iterator[Predictions]:
        """The sequences now complete that are next in order (then forgotten here)."""
        nonlocal ready
        while ready < len(sequences) and left[ready] == 0:
            yield result_of(ready)
            results.pop(ready)
            ready += 1

    with _workers_for(model, workers) as pool:
        for (index, batch), outputs in zip(owners, pool.map(_window_outputs, tasks), strict=True):
            result = result_of(index)
            for t, out in zip(batch, outputs, strict=True):
                keep = slice(t.keep_start - t.start, t.keep_end - t.start)
                kept = slice(t.keep_start, t.keep_end)
                if result.log_probs is not None:
                    result.log_probs[kept] = out.log_probs[keep]
                for s in range(len(out.boundary_prob)):
                    result.boundary_prob[s, kept] = out.boundary_prob[s][keep]
                    result.boundary_mask[s, kept] = out.boundary_mask[s][keep]
                if on_progress is not None:
                    on_progress(t.keep_end - t.keep_start)
            left[index] -= 1
            yield from whole()
        yield from whole()  # empty sequences at the end


def _window_outputs(model, device, precision, batch_size, boundaries_only, depth,
                    views) -> list[WindowOutput]:
    return list(forward_windows(model, views, device, batch_size, precision=precision,
                                boundaries_only=boundaries_only, depth=depth))
