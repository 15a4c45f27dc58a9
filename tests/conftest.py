import gzip
import os
from pathlib import Path

import pytest
import torch

from dnahnet_core.train.precision import exact_fp32

REPO = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO / "dnahnet_core" / "demo_data"
TEST_DATA = REPO / "tests" / "data"

torch.set_num_threads(1)  # tests run two workers on two cores
# fp32 on CUDA is IEEE float32, as `--precision fp32` sets it up; Triton reads this when it
# compiles a kernel, so it must hold before any test runs one (no effect on a CPU)
exact_fp32()


def leftovers(directory: str | os.PathLike) -> list[str]:
    """Names left in TMPDIR, but torch's compile cache (made when torch._dynamo loads)."""
    return [name for name in os.listdir(directory) if not name.startswith("torchinductor_")]


@pytest.fixture(scope="session")
def mycoplasma_contig() -> str:
    """The first scaffold of the bundled Mycoplasma alvi genome (real sequence)."""
    lines = []
    with gzip.open(DEMO_DATA / "mycoplasma_alvi.fna.gz", "rt") as handle:
        next(handle)
        for line in handle:
            if line.startswith(">"):
                break
            lines.append(line.strip())
    return "".join(lines).upper()
