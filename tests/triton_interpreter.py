"""mamba-ssm's Triton kernels on a CPU, through Triton's interpreter (TRITON_INTERPRET=1).

The fast path's GPU checks (test_fast_path.py) need CUDA; this runs the same checks with
CPU tensors, every kernel executed by Triton's numpy interpreter, so a machine without a
GPU can tell whether dnahnet calls the kernels right (arguments, layouts, states, the
gated norm, their backward passes). It says nothing about speed or bf16 rounding on a GPU.

    PYTHONPATH=SITE python tests/triton_interpreter.py [fp32 dnahnet-tiny 512]

SITE holds mamba_ssm installed as scripts/gpu_check.sh installs it (its __init__ trimmed);
triton must be importable. With no arguments it runs CHECKS, the set that
`gpu_check.sh --dry-run` and tests/test_fast_path.py use. Exit 0 when every check passes.
The interpreter is slow: keep the models tiny and the sequences short.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types
from pathlib import Path

# (check, preset, nt): ~2 min each on one core
CHECKS = (("fp32", "dnahnet-tiny", 512), ("incremental", "dnahnet-tiny", 512))


def enable() -> None:
    """Patch what the interpreter lacks on a machine without CUDA."""
    os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported, by us or by mamba_ssm
    import torch
    from triton.runtime import autotuner, interpreter

    # the kernels' launches sit in `with torch.cuda.device(x.device.index)`, and the gated
    # norm's backward sizes its grid by the GPU's multiprocessor count
    torch.cuda.device = lambda index=None: contextlib.nullcontext()
    torch.cuda.get_device_properties = lambda device=None: types.SimpleNamespace(
        multi_processor_count=4)
    # autotuning times every config with a GPU benchmarker; any config gives the same result
    autotuner.Autotuner._bench = lambda self, *args, config, **kwargs: [0.0, 0.0, 0.0]
    # the interpreter keeps program ids as 1-element arrays, and numpy >= 2.4 refuses
    # int() of those ("only 0-dimensional arrays can be converted to Python scalars")
    patch = interpreter._patch_lang_tensor

    def patch_with_index(tensor, scope):
        patch(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    interpreter._patch_lang_tensor = patch_with_index

    from dnahnet_core.model import fast_path

    # every tensor takes the fast path unless DNAHNET_PURE_TORCH=1 (the checks' pure side)
    fast_path.enabled_for = lambda tensor: os.environ.get("DNAHNET_PURE_TORCH") != "1"


def main(argv: list[str]) -> int:
    checks = [(argv[0], argv[1], int(argv[2]))] if argv else CHECKS
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    enable()
    import test_fast_path

    for check, preset, length in checks:
        getattr(test_fast_path, f"check_{check}_agreement")("cpu", preset, length=length,
                                                            batch=1)
        print(f"{check} {preset} {length}: the fast path agrees with the pure path", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
