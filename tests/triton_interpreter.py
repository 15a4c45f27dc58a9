"""mamba-ssm's Triton kernels on a CPU, through Triton's interpreter (TRITON_INTERPRET=1).

The fast path's GPU checks (test_fast_path.py) need CUDA; this runs the same checks with
CPU tensors, every kernel executed by Triton's numpy interpreter, so a machine without a
GPU can tell whether dnahnet calls the kernels right (arguments, layouts, states, the
gated norm, their backward passes). It says nothing about speed or bf16 rounding on a GPU.

    PYTHONPATH=SITE python tests/triton_interpreter.py [--tf32] [fp32 dnahnet-tiny 512 [BATCH]]

CHECK (the first argument): fp32, bf16, incremental, widths, rmsnorm, conv or capture
(test_fast_path.check_*; rmsnorm and conv ignore the preset).

SITE holds mamba_ssm installed as scripts/gpu_check.sh installs it (its __init__ trimmed);
triton must be importable. With no arguments it runs CHECKS, the set that
`gpu_check.sh --dry-run` and tests/test_fast_path.py use. Exit 0 when every check passes.
The interpreter is slow: keep the models tiny and the sequences short.

--tf32 rounds the float32 operands of every `tl.dot` to TF32 (10 mantissa bits), as an
NVIDIA GPU's tensor cores do: mamba-ssm's kernels leave `tl.dot` at Triton's default input
precision, which is TF32 on CUDA, so its "fp32" fast path multiplies in TF32 there while the
interpreter, by default, multiplies in full float32.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types
from pathlib import Path

# (check, preset, nt, batch): 2-4 min each on one core
CHECKS = (("fp32", "dnahnet-tiny", 512, 1), ("incremental", "dnahnet-tiny", 512, 1),
          ("rmsnorm", "-", 300, 2), ("conv", "-", 300, 2), ("capture", "dnahnet-tiny", 300, 2))
PASSED = {"widths": "fixed chunk widths agree with counted ones on the fast path",
          "capture": "a training step with fixed chunk widths never reads back to the host"}


def tf32(values):
    """float32 values rounded to TF32's 10 mantissa bits (to nearest, ties away from 0)."""
    import numpy as np

    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


def emulate_tf32_dot() -> None:
    """Make the interpreter's tl.dot multiply float32 operands in TF32, as a GPU does."""
    import numpy as np
    from triton.runtime import interpreter

    create_dot = interpreter.InterpreterBuilder.create_dot

    def create_dot_tf32(self, a, b, d, input_precision, max_num_imprecise_acc):
        if (a.data.dtype == np.float32 and b.data.dtype == np.float32
                and str(input_precision).endswith(".TF32")):
            a = interpreter.TensorHandle(tf32(a.data), a.dtype.scalar)
            b = interpreter.TensorHandle(tf32(b.data), b.dtype.scalar)
        return create_dot(self, a, b, d, input_precision, max_num_imprecise_acc)

    interpreter.InterpreterBuilder.create_dot = create_dot_tf32


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


def passed(check: str) -> str:
    """What the harness prints when ``check`` passes."""
    return PASSED.get(check, "the fast path agrees with the pure path")


def main(argv: list[str]) -> int:
    emulate = "--tf32" in argv
    argv = [a for a in argv if a != "--tf32"]
    checks = [(argv[0], argv[1], int(argv[2]), int(argv[3]) if len(argv) > 3 else 1)
              ] if argv else CHECKS
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    enable()
    if emulate:
        emulate_tf32_dot()
    import test_fast_path

    for check, preset, length, batch in checks:
        run = (getattr(test_fast_path, f"check_{check}_agreement", None)
               or getattr(test_fast_path, f"check_{check}"))
        run("cpu", preset, length=length, batch=batch)
        print(f"{check} {preset} {length}: {passed(check)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
