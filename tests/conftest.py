import gzip
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO / "dnahnet_core" / "demo_data"
TEST_DATA = REPO / "tests" / "data"

torch.set_num_threads(1)  # tests run two workers on two cores


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
