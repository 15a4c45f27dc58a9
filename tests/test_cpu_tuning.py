"""keep_freed_memory: a forward pass stops page-faulting through memory freed by the last."""

import os
import subprocess
import sys

import pytest

PROGRAM = """
import resource, sys, torch
from dnahnet_core.device import keep_freed_memory
from dnahnet_core.model import build_model, load_config
if sys.argv[1] == "keep":
    keep_freed_memory()
torch.set_num_threads(1)
model = build_model(load_config("dnahnet-tiny"), seed=0).eval()
tokens = torch.randint(0, 4, (1, 8192))
with torch.inference_mode():
    for _ in range(3):
        model(tokens)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        model(tokens)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    # glibc's own threshold at its starting value, fixed: it otherwise rises after the first
    # freed block of a size, and now and then the default arm page-faults almost never
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    out = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True,
                         text=True, check=True, env=env)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_keep_freed_memory_stops_refaulting_freed_tensors():
    default, kept = _faults("default"), _faults("keep")
    assert default > 3000  # glibc maps large tensors afresh and unmaps them on free
    assert kept < default / 5
