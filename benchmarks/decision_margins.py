"""How close a model's boundary decisions sit to the 0.5 threshold, and whether
rounding-sized error flips them (docs/gpu.md, "The shipped model's second router").

For each stage: the 5th-95th percentiles of its boundary probabilities and how many lie
within 1e-2 / 1e-3 / 1e-4 of 0.5, on real DNA (phage T4, bundled) and on random
nucleotides, 2 x 4,096 nt. Then the same model under two perturbations, against itself:
every weight moved by one float32 ulp (IEEE-sized error, as a second fp32 kernel makes)
and every product of the SSD scan with its operands rounded to TF32 (as mamba-ssm's
kernels multiply on NVIDIA GPUs at Triton's default precision): the largest change in
log-probs and probabilities, and how many decisions flip.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/decision_margins.py [--model DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import sys
from pathlib import Path

import numpy as np
import torch

from dnahnet_core.io.fasta import iter_token_records
from dnahnet_core.model import load_model
from dnahnet_core.model import ssd as ssd_module

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.triton_interpreter import tf32  # noqa: E402  (the interpreter's TF32 rounding)

T4 = REPO / "tests/data/pool/phage_T4_NC_000866.1.fna.gz"
LENGTH, ROWS = 4096, 2


def inputs() -> dict[str, torch.Tensor]:
    _, _, tokens = next(iter(iter_token_records(T4)))
    t4 = torch.from_numpy(tokens[: ROWS * LENGTH].astype(np.int64)).view(ROWS, LENGTH)
    random = torch.randint(0, 4, (ROWS, LENGTH), generator=torch.Generator().manual_seed(1))
    return {"T4": t4, "random": random}


def run(model, tokens):
    with torch.no_grad():
        out = model(tokens)
    return torch.log_softmax(out.logits.float(), -1), out.stages


def margins(name: str, stages) -> None:
    outer = None
    for number, stage in enumerate(stages, 1):
        # an inner stage decides only where the outer one has a boundary
        p = stage.boundary_prob if outer is None else stage.boundary_prob[outer]
        p = p.flatten().float()
        outer = stage.boundary_mask
        margin = (p - 0.5).abs()
        low, high = (float(q) for q in torch.quantile(p, torch.tensor([0.05, 0.95])))
        counts = ", ".join(f"{int((margin < t).sum())} within {t:g}" for t in (1e-2, 1e-3, 1e-4))
        print(f"{name:7} stage {number}: {p.numel():5d} decisions, p 5-95% {low:.3f}-{high:.3f}; "
              f"{counts}")


def ulp_nudged(model):
    nudged = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for weight in nudged.parameters():
            sign = torch.randint(0, 2, weight.shape, generator=generator).float() * 2 - 1
            weight.mul_(1 + sign * 2.0**-23)
    return nudged


@contextlib.contextmanager
def tf32_scan():
    """Every `@` inside the pure SSD scan multiplies TF32-rounded operands."""
    exact_scan, matmul = ssd_module.ssd_chunked, torch.Tensor.__matmul__

    def rounded(t):
        return torch.from_numpy(tf32(t.detach().float().numpy())).to(t.dtype)

    def scan(*args, **kwargs):
        torch.Tensor.__matmul__ = lambda a, b: matmul(rounded(a), rounded(b))
        try:
            return exact_scan(*args, **kwargs)
        finally:
            torch.Tensor.__matmul__ = matmul

    ssd_module.ssd_chunked = scan
    try:
        yield
    finally:
        ssd_module.ssd_chunked = exact_scan


def compare(name: str, exact, perturbed) -> None:
    (logp, stages), (logp2, stages2) = exact, perturbed
    parts = [f"logp {float((logp - logp2).abs().max()):.1e}"]
    for number, (a, b) in enumerate(zip(stages, stages2, strict=True), 1):
        probs = float((a.boundary_prob - b.boundary_prob).abs().max())
        flips = int((a.boundary_mask != b.boundary_mask).sum())
        parts.append(f"stage {number}: probs {probs:.1e}, {flips} flipped")
    print(f"  {name}: " + "; ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model directory (default: the shipped model)")
    args = parser.parse_args()
    model = load_model(args.model).train()  # train(): the agreement checks' mode
    nudged = ulp_nudged(model)
    for name, tokens in inputs().items():
        exact = run(model, tokens)
        margins(name, exact[1])
        compare("one-ulp weights", exact, run(nudged, tokens))
        with tf32_scan():
            compare("TF32 SSD products", exact, run(model, tokens))


if __name__ == "__main__":
    main()
