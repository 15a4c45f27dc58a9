"""Training speed of the CPU modes (fp32, bf16, --compile), as same-run ratios.

One process and one model per preset. Every round runs one training step in each
mode (forward + backward + clip + AdamW on one fragment, as `dnahnet train` does),
so a noisy, shared machine slows every mode alike. The table gives the median step
time of each mode and its speed-up over the first mode (fp32 eager, the issue's
baseline). "+compile" is what `dnahnet train --compile` does on a CPU
(`train.compile.compiled_for_training`: the Mamba2 layers' full blocks); it is
switched on and off per step on the same model. The compile time is reported apart:
it is spent once, in the first step. Peak memory per mode is `train_speed.py`'s job
(it uses fresh processes).

    OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python benchmarks/train_modes.py \
        --models dnahnet-small dnahnet-paper-small --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from train_speed import training_step  # this folder's: one step as `dnahnet train` takes it

from dnahnet_core.device import keep_freed_memory
from dnahnet_core.model import build_model, load_config
from dnahnet_core.model.blocks import MambaLayer
from dnahnet_core.train.compile import compiled_for_training
from dnahnet_core.train.optim import build_optimizer

MODES = ["fp32", "bf16", "fp32+compile", "bf16+compile"]


def measure(name: str, length: int, rounds: int, modes: list[str]) -> dict:
    cpu = torch.device("cpu")
    model = build_model(load_config(name), seed=0)
    optimizer = build_optimizer(model, lr=1e-3)
    layers = [m for m in model.modules() if isinstance(m, MambaLayer)]
    compiled_for_training(model, cpu)
    compiled = [layer.compiled_block for layer in layers]
    tokens = torch.randint(0, 4, (1, length), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(tokens, dtype=torch.bool)

    def step(mode: str) -> float:
        precision, _, flag = mode.partition("+")
        for layer, block in zip(layers, compiled):
            layer.compiled_block = block if flag == "compile" else None
        start = time.perf_counter()
        training_step(model, model, optimizer, tokens, mask, precision)
        return time.perf_counter() - start

    first_step = {mode: step(mode) for mode in modes}  # warm-up; compiles the "+compile" modes
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode in modes:
            times[mode].append(step(mode))
    medians = {mode: statistics.median(t) for mode, t in times.items()}
    return {
        "model": name, "length": length, "rounds": rounds, "step_s": medians,
        "nt_per_s": {m: length / s for m, s in medians.items()},
        "speed_up": {m: medians[modes[0]] / s for m, s in medians.items()},
        "first_step_s": first_step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["dnahnet-small", "dnahnet-paper-small"])
    parser.add_argument("--length", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the dnahnet command does
    results = [measure(name, args.length, args.rounds, args.modes) for name in args.models]
    print(f"| model | mode | s / step (median of {args.rounds}) | nt/s | vs {args.modes[0]} "
          "| first step s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        for mode in args.modes:
            print(f"| {r['model']} | {mode} | {r['step_s'][mode]:.2f} | {r['nt_per_s'][mode]:,.0f} "
                  f"| {r['speed_up'][mode]:.2f}x | {r['first_step_s'][mode]:.1f} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
