"""Training throughput and peak memory: dnahnet-small vs transformer-small (and mamba2-small).

One training step = forward + backward + clip + AdamW on one 8,192-nt fragment (batch 1
by default), exactly as `dnahnet train` does it. Each model runs in a fresh process so
its peak resident memory is its own. On a GPU it also runs in bf16 on both back ends
(pure PyTorch via DNAHNET_PURE_TORCH=1, and mamba-ssm's kernels when importable) and
reports tokens/s and model FLOPs utilisation: the model's analytic FLOPs (`dnahnet
model-info`'s accounting, dnahnet_core/model/flops.py, at the target ratios) x 3 for
forward + backward, divided by the step time and the GPU's dense bf16 peak. The FLOPs
torch's FlopCounterMode counts in one step are shown beside it: they miss what runs
inside Triton kernels (mamba-ssm's scan), so they cannot measure the fast path.

    .venv/bin/python benchmarks/train_speed.py [--length 8192] [--steps 3] [--models ...]
    python benchmarks/train_speed.py --device cuda    # GPU rows only (scripts/gpu_check.sh)
    python benchmarks/train_speed.py --device cuda --cuda-graphs   # + bf16+graphs rows

A bf16+graphs row replays the forward and backward from CUDA graphs captured at the
batch's shape, each stage's inner length fixed: `dnahnet train --cuda-graphs`
(dnahnet_core/train/graphs.py), a training step without the host issuing every op.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def training_step(model, net, optimizer, tokens, mask, precision: str) -> None:
    """One step as `dnahnet train` takes it: forward through ``net`` (the model, maybe
    compiled or graphed), loss with the default ratio-loss weight, backward, clipping,
    AdamW."""
    import torch

    from dnahnet_core.train.metrics import token_nll
    from dnahnet_core.train.precision import autocast

    with autocast(tokens.device, precision):
        out = net(tokens, mask)
    loss = token_nll(out.logits, tokens, mask) / mask.sum() + 0.02 * out.ratio_loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=not getattr(net, "keeps_gradients", False))


def model_flops_per_step(model, batch: int, length: int) -> float:
    """Training FLOPs of one step by our accounting: 3 x the analytic forward FLOPs."""
    from dnahnet_core.model.flops import flops_per_nucleotide

    return 3.0 * flops_per_nucleotide(model, length)["total"] * batch * length


def one_run(model_name: str, length: int, steps: int, batch: int, device: str,
            precision: str) -> dict:
    """``precision``: fp32 or bf16, with ``+compile`` for ``dnahnet train --compile`` or
    ``+graphs`` for ``dnahnet train --cuda-graphs`` (the forward and backward replayed
    from CUDA graphs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from dnahnet_core.device import keep_freed_memory
    from dnahnet_core.model import build_model, load_config
    from dnahnet_core.train.compile import compiled_for_training
    from dnahnet_core.train.optim import build_optimizer

    keep_freed_memory()  # as the dnahnet command does
    precision, _, compile_flag = precision.partition("+")
    dev = torch.device(device)
    model = build_model(load_config(model_name), seed=0).to(dev)
    params = sum(p.numel() for p in model.parameters())
    opt = build_optimizer(model, lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 4, (batch, length), generator=gen).to(dev)
    mask = torch.ones_like(tokens, dtype=torch.bool)
    net = model
    if compile_flag == "compile":
        net = compiled_for_training(model, dev)
    elif compile_flag == "graphs":
        from dnahnet_core.train.graphs import GraphedTrainingForward

        net = GraphedTrainingForward(model, precision=precision)

    def step() -> None:
        training_step(model, net, opt, tokens, mask, precision)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    step()  # warm-up (allocations, kernel compilation, torch.compile, graph capture)
    sync()
    warmup_s = time.perf_counter() - start
    if getattr(net, "off_because", None):  # the graphs fell back to eager: no graphs row
        raise RuntimeError(f"CUDA graphs turned off: {net.off_because}")
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    seconds = sorted(times)[len(times) // 2]
    result = {
        "model": model_name, "params": params, "length": length, "batch": batch,
        "device": device, "precision": precision + ("+compile" if compile_flag else ""),
        "step_s": seconds, "warmup_s": warmup_s,
        "nt_per_s": batch * length / seconds, "threads": torch.get_num_threads(),
        "model_tflop_per_step": model_flops_per_step(model, batch, length) / 1e12,
    }
    if dev.type == "cuda":
        from dnahnet_core.model import fast_path

        counter = FlopCounterMode(display=False)
        with counter:
            step()
        flops = result["model_tflop_per_step"] * 1e12
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        result.update(
            gpu=name, mamba_ssm=fast_path.available(),
            peak_mem_gib=torch.cuda.max_memory_allocated() / 2**30,
            counted_tflop_per_step=counter.get_total_flops() / 1e12,
            mfu=(flops / seconds / (peak * 1e12)) if peak else None,
        )
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result.update(peak_rss_mib=peak, training_rss_mib=peak - rss_before)
    return result


def spawn(args, model: str, device: str, precision: str, env_extra: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", model, "--length", str(args.length),
           "--steps", str(args.steps), "--batch", str(args.batch), "--device", device,
           "--precision", precision]
    env = dict(os.environ, **env_extra)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"model": model, "device": device, "error": proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=["dnahnet-small", "transformer-small"])
    parser.add_argument("--device", default="auto",
                        help="auto: CPU rows, plus GPU rows where CUDA is present; cpu; cuda")
    parser.add_argument("--precision", default="fp32", help="(child runs)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "bf16+compile"],
                        help="CPU precisions to compare (+compile: --compile); ratios are "
                             "against the first")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="GPU: also each model's forward and backward replayed from CUDA "
                             "graphs (bf16+graphs rows, mamba-ssm's kernels)")
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args.child, args.length, args.steps, args.batch, args.device,
                                 args.precision)))
        return

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device is visible")
    rows = []
    if args.device in ("auto", "cpu"):
        rows += [spawn(args, m, "cpu", p, {}) for m in args.models for p in args.precisions]
    if args.device != "cpu" and torch.cuda.is_available():
        gpu = "cuda" if args.device == "auto" else args.device
        for m in args.models:
            rows.append(spawn(args, m, gpu, "bf16", {"DNAHNET_PURE_TORCH": "1"}))
            rows.append(spawn(args, m, gpu, "bf16", {}))
            if args.cuda_graphs:
                rows.append(spawn(args, m, gpu, "bf16+graphs", {}))
    print(f"{'model':<20}{'device':<7}{'prec':<13}{'params':>11}{'s/step':>9}{'nt/s':>10}"
          f"{'memory':>14}{'MFU':>8}{'vs 1st':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<20}{r['device']:<6}error: {r['error']}")
            continue
        memory = (f"{r['peak_mem_gib']:.2f} GiB" if "peak_mem_gib" in r
                  else f"+{r['training_rss_mib']:.0f} MiB")
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") else "-"
        path = ""
        if r["device"] == "cuda":
            path = " (mamba-ssm)" if r.get("mamba_ssm") else " (pure torch)"
        base = next((b for b in rows if b.get("model") == r["model"] and "error" not in b
                     and b["device"] == r["device"]), r)
        speedup = f"{r['nt_per_s'] / base['nt_per_s']:.2f}x"
        print(f"{r['model']:<20}{r['device']:<7}{r['precision']:<13}{r['params']:>11,}"
              f"{r['step_s']:>9.2f}{r['nt_per_s']:>10,.0f}{memory:>14}{mfu:>8}{speedup:>9}{path}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
