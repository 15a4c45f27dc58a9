"""The process's device and memory habits (dnahnet_core.device): keep_freed_memory stops a
forward pass page-faulting through memory freed by the last; --device is checked."""

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


def test_a_gpu_index_past_the_machines_gpus_is_one_error(monkeypatch):
    """--device cuda:N is checked against the GPUs there are (else torch's "invalid device
    ordinal" traceback when the model is placed); CUDA faked present with two GPUs."""
    import torch

    from dnahnet_core.device import resolve_device
    from dnahnet_core.errors import DnahnetError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(DnahnetError, match=r"^--device cuda:2: this machine has 2 GPUs "
                                           r"\(cuda:0 to cuda:1\)$"):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DnahnetError, match="CUDA is not available"):
        resolve_device("cuda:0")
