"""Training: schedule, parameter groups, data order, checkpoints, resume, stopping, metrics."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dnahnet_core.alphabet import reverse_complement_tokens
from dnahnet_core.errors import DnahnetError
from dnahnet_core.train import checkpoint as ckpt
from dnahnet_core.train.data import ShardedBatches, collate
from dnahnet_core.train.evaluate import evaluate_split
from dnahnet_core.train.loop import NonFinite, train
from dnahnet_core.train.metrics import read_metrics
from dnahnet_core.train.optim import WarmupCosine, build_optimizer, default_param_groups
from dnahnet_core.train.options import TrainOptions, resolve_options
from tests.train_helpers import ListDataset, ToyLM


def toy_options(out, **kw) -> TrainOptions:
    values = dict(data="unused", config="toy", out=str(out), max_steps=8, batch_size=4,
                  lr=3e-3, log_every=1, eval_every=4, save_every=4, keep=2, device="cpu",
                  eval_fragments=8)
    values.update(kw)
    return TrainOptions(**values)


def run_toy(out, *, resume=False, train_set=None, model=None, **kw):
    return train(toy_options(out, **kw), resume=resume, model=model or ToyLM(),
                 train_set=train_set or ListDataset(40), val_set=ListDataset(8, seed=1),
                 show_progress=False)


def train_losses(run_dir) -> list[float]:
    return [r["loss"] for r in read_metrics(run_dir) if r["kind"] == "train"]


# --- optimizer and schedule -------------------------------------------------------------------


def test_schedule_warms_up_then_decays_to_floor():
    s = WarmupCosine(1e-3, warmup=10, total=110, min_ratio=0.1)
    assert s.lr(0) == pytest.approx(1e-4)
    assert s.lr(9) == pytest.approx(1e-3)
    assert s.lr(60) == pytest.approx(1e-4 + 0.9e-3 * 0.5)
    assert s.lr(110) == pytest.approx(1e-4)
    assert s.lr(500) == pytest.approx(1e-4)
    lrs = [s.lr(i) for i in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_schedule_keeps_group_multipliers():
    model = ToyLM()
    opt = build_optimizer(model, lr=1e-3)
    opt.param_groups[0]["lr_mult"] = 2.0
    base = WarmupCosine(1e-3, 0, 100).apply(opt, 50)
    assert opt.param_groups[0]["lr"] == pytest.approx(2 * base)
    assert opt.param_groups[1]["lr"] == pytest.approx(base)


def test_no_weight_decay_on_norms_and_biases():
    model = ToyLM()
    groups = default_param_groups(model, lr=1e-3, weight_decay=0.1)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in decayed) == (p.ndim >= 2 and "norm" not in name), name


# --- data -------------------------------------------------------------------------------------


def test_collate_pads_with_n_and_masks():
    tokens, mask = collate([np.array([0, 1, 2], np.uint8), np.array([3], np.uint8)])
    assert tokens.tolist() == [[0, 1, 2], [3, 4, 4]]
    assert mask.tolist() == [[True, True, True], [True, False, False]]


def test_data_order_is_seeded_and_covers_each_epoch():
    ds = ListDataset(10)
    a = ShardedBatches(ds, seed=3, micro_batch=5, grad_accum=1, rc_augment=False)
    b = ShardedBatches(ds, seed=3, micro_batch=5, grad_accum=1, rc_augment=False)
    c = ShardedBatches(ds, seed=4, micro_batch=5, grad_accum=1, rc_augment=False)
    epoch = [a.order(p)[0] for p in range(10)]
    assert sorted(epoch) == list(range(10))
    assert epoch == [b.order(p)[0] for p in range(10)]
    assert epoch != [c.order(p)[0] for p in range(10)]
    assert [a.order(p)[0] for p in range(10, 20)] != epoch  # a new permutation per epoch


def test_reverse_complement_augmentation_flips_about_half():
    ds = ListDataset(200)
    stream = ShardedBatches(ds, seed=0, micro_batch=1, grad_accum=1)
    flips = 0
    for p in range(200):
        index, flip = stream.order(p)
        expected = reverse_complement_tokens(ds[index]) if flip else ds[index]
        assert np.array_equal(stream.fragment(p), expected)
        flips += flip
    assert 70 < flips < 130


def test_ranks_read_disjoint_shards_matching_one_process_with_accumulation():
    ds = ListDataset(30)
    single = ShardedBatches(ds, seed=1, micro_batch=2, grad_accum=2)
    ranks = [ShardedBatches(ds, seed=1, micro_batch=2, grad_accum=1, rank=r, world_size=2)
             for r in range(2)]
    assert single.global_batch == ranks[0].global_batch == 4
    for seen in (0, 4, 28):  # 28 crosses into the second epoch
        whole = single.step(seen)
        parts = [ranks[0].step(seen)[0], ranks[1].step(seen)[0]]
        for (t1, m1), (t2, m2) in zip(whole, parts, strict=True):
            assert torch.equal(t1, t2) and torch.equal(m1, m2)


# --- checkpoints ------------------------------------------------------------------------------


def test_optimizer_state_round_trips_through_safetensors_and_json(tmp_path):
    model = ToyLM()
    opt = build_optimizer(model, lr=1e-3)
    model(torch.randint(0, 4, (2, 12))).logits.sum().backward()
    opt.step()
    tensors, meta = ckpt.optimizer_to_files(opt)
    json.dumps(meta)  # JSON-able
    fresh = build_optimizer(model, lr=1e-3)
    ckpt.optimizer_from_files(fresh, tensors, json.loads(json.dumps(meta)))
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for index, entries in a["state"].items():
        for key, value in entries.items():
            assert torch.equal(value, b["state"][index][key])


def test_checkpoint_layout_keep_last_k_and_model_files(tmp_path):
    result = run_toy(tmp_path / "run", max_steps=10, save_every=2, keep=2)
    assert result.status == "finished" and result.step == 10
    steps = [s for s, _ in ckpt.list_checkpoints(tmp_path / "run")]
    assert steps == [8, 10]
    run = tmp_path / "run"
    for name in ("model.safetensors", "metadata.json", "run.json", "metrics.jsonl"):
        assert (run / name).is_file(), name
    state_dir = run / "checkpoints" / "step-000010" / "train_state"
    assert sorted(p.name for p in state_dir.iterdir()) == [
        "optimizer.safetensors", "rng.safetensors", "state.json"]
    assert json.loads((run / "metadata.json").read_text())["step"] == 10
    # the run-level weights are the latest ones
    loaded = ToyLM(seed=5)
    ckpt.load_checkpoint(run / "checkpoints" / "step-000010", loaded)
    from safetensors.torch import load_file
    top = load_file(str(run / "model.safetensors"))
    for name, value in loaded.state_dict().items():
        assert torch.equal(top[name], value)
    assert not list((run / "checkpoints").glob(".*"))  # no temporary leftovers


def test_failed_checkpoint_write_leaves_previous_intact(tmp_path):
    model = ToyLM()
    opt = build_optimizer(model, lr=1e-3)
    args = dict(model=model, optimizer=opt, state={}, rng_per_rank=[ckpt.capture_rng()],
                metadata={})
    ckpt.save_checkpoint(tmp_path, step=1, **args)

    def broken(module, directory, metadata):
        (directory / "model.safetensors").write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        ckpt.save_checkpoint(tmp_path, step=2, save_weights=broken, **args)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [1]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000001"]
    ckpt.load_checkpoint(tmp_path / "checkpoints" / "step-000001", ToyLM(), opt)


# --- the loop ---------------------------------------------------------------------------------


def test_training_lowers_the_loss_and_logs_every_field(tmp_path):
    result = run_toy(tmp_path / "run", max_steps=40, log_every=5, eval_every=20, lr=1e-2)
    records = read_metrics(tmp_path / "run")
    train_records = [r for r in records if r["kind"] == "train"]
    val_records = [r for r in records if r["kind"] == "val"]
    assert [r["step"] for r in train_records] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert [r["step"] for r in val_records] == [20, 40]
    first, last = train_records[0], train_records[-1]
    for key in ("loss", "nll", "bpb", "ratio_loss", "lr", "grad_norm", "nt_per_s", "tokens",
                "compression_0", "mean_prob_0", "selected_0"):
        assert math.isfinite(last[key]), key
    assert last["bpb"] == pytest.approx(last["nll"] / math.log(2))
    assert last["bpb"] < first["bpb"] - 0.1
    assert val_records[-1]["bpb"] < math.log2(5)
    assert result.val["bpb"] == val_records[-1]["bpb"]
    # tokens count only valid (unpadded) nucleotides
    ds = ListDataset(40)
    assert train_records[0]["tokens"] < 5 * 4 * ds.fragment_length


def test_resume_is_bit_for_bit(tmp_path):
    run_toy(tmp_path / "straight", max_steps=8)
    paused = run_toy(tmp_path / "split", max_steps=8, stop_after=4)
    assert paused.status == "paused" and paused.step == 4
    resumed = train(resolve_options({"out": str(tmp_path / "split")}, resume=True),
                    resume=True, model=ToyLM(seed=9), train_set=ListDataset(40),
                    val_set=ListDataset(8, seed=1), show_progress=False)
    assert resumed.step == 8
    straight, split = train_losses(tmp_path / "straight"), train_losses(tmp_path / "split")
    assert len(straight) == len(split) == 8
    assert straight == split  # exact
    a = (tmp_path / "straight" / "model.safetensors").read_bytes()
    b = (tmp_path / "split" / "model.safetensors").read_bytes()
    assert a == b


class TenSecondSteps(ToyLM):
    """A model whose every forward pass moves a fake clock by 10 s (the loop reads it)."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self.clock = clock

    def forward(self, tokens, mask=None):
        self.clock[0] += 10.0
        return super().forward(tokens, mask)


def test_time_limit_saves_and_stops_before_the_limit_then_resumes_exactly(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from dnahnet_core.train import loop

    clock = [0.0]
    monkeypatch.setattr(loop, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    run_toy(tmp_path / "straight", max_steps=12, model=TenSecondSteps(clock))
    clock[0] = 0.0
    paused = run_toy(tmp_path / "split", max_steps=12, time_limit=1.0, model=TenSecondSteps(clock))
    # steps of 10 s and a validation of 20 s every 4: the session stops inside its 60 s
    assert paused.status == "paused" and 1 < paused.step < 12
    assert clock[0] <= 60.0
    assert paused.checkpoint.name == ckpt.checkpoint_name(paused.step)
    resumed = train(resolve_options({"out": str(tmp_path / "split")}, resume=True),
                    resume=True, model=TenSecondSteps(clock), train_set=ListDataset(40),
                    val_set=ListDataset(8, seed=1), show_progress=False)
    assert resumed.status == "finished" and resumed.step == 12  # the limit was that session's
    assert train_losses(tmp_path / "straight") == train_losses(tmp_path / "split")
    kinds = [r["kind"] for r in read_metrics(tmp_path / "split")]
    assert kinds.count("baseline") == 1 and kinds[0] == "baseline"  # once per run


def test_resume_drops_metrics_logged_after_the_checkpoint(tmp_path):
    run_toy(tmp_path / "run", max_steps=8, stop_after=4)
    with open(tmp_path / "run" / "metrics.jsonl", "a") as handle:  # a crash after step 4
        handle.write(json.dumps({"kind": "train", "step": 5, "loss": 9.0}) + "\n{\"kind\": ")
    train(resolve_options({"out": str(tmp_path / "run")}, resume=True), resume=True,
          model=ToyLM(), train_set=ListDataset(40), show_progress=False)
    steps = [r["step"] for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    assert steps == list(range(1, 9))


class NanAt(ToyLM):
    def __init__(self, bad_call: int) -> None:
        super().__init__()
        self.calls, self.bad_call = 0, bad_call

    def forward(self, tokens, mask=None):
        self.calls += 1
        out = super().forward(tokens, mask)
        if self.calls == self.bad_call:
            out.logits = out.logits * float("nan")
        return out


def test_nan_loss_stops_naming_the_step_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(NonFinite, match=r"non-finite loss at step 5: .*step-000004"):
        run_toy(tmp_path / "run", model=NanAt(bad_call=5), save_every=2, eval_every=100)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "run")] == [2, 4]
    assert json.loads((tmp_path / "run" / "metadata.json").read_text())["step"] == 4


@pytest.mark.parametrize("stop, status", [(signal.SIGINT, "interrupted"),
                                          (signal.SIGTERM, "terminated")])
def test_a_signal_saves_a_checkpoint_and_returns(tmp_path, stop, status):
    def interrupt(step, record):
        if step == 3:
            os.kill(os.getpid(), stop)

    before = signal.getsignal(stop)
    result = train(toy_options(tmp_path / "run", save_every=100), model=ToyLM(),
                   train_set=ListDataset(40), on_step=interrupt, show_progress=False)
    assert result.status == status
    assert result.step == 4  # the step in flight when the signal arrived is completed
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "run")] == [4]
    assert signal.getsignal(stop) is before  # the caller's handler is back


@pytest.mark.parametrize("status, code, said", [
    ("interrupted", 130, "interrupted at step 4; checkpoint saved to "),
    ("terminated", 143, "terminated (SIGTERM) at step 4; checkpoint saved to "),
])
def test_the_command_exits_as_every_command_does_for_its_signal(
    tmp_path, monkeypatch, capsys, status, code, said
):
    from dnahnet_cli.app import run
    from dnahnet_core import train as library
    from dnahnet_core.train.loop import TrainResult

    def stopped(options, resume=False):
        Path(options.out, "checkpoints", "step-000004").mkdir(parents=True)
        return TrainResult(step=4, status=status, run_dir=Path(options.out),
                           checkpoint=Path(options.out, "checkpoints", "step-000004"))

    monkeypatch.setattr(library, "train", stopped)
    prepared = tmp_path / "data"
    prepared.mkdir()
    assert run(["train", "--data", str(prepared), "--config", "dnahnet-tiny",
                "--out", str(tmp_path / "run")]) == code
    assert said in capsys.readouterr().err


def test_evaluate_uniform_model_gives_log2_5_bits():
    class Uniform(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def forward(self, tokens, mask=None):
            logits = torch.zeros(*tokens.shape, 5) * self.w
            return type("Out", (), {"logits": logits, "ratio_loss": 0.0, "stages": []})()

    result = evaluate_split(Uniform(), ListDataset(7), batch_size=3)
    assert result["bpb"] == pytest.approx(math.log2(5))
    assert result["nucleotides"] == sum(len(x) for x in ListDataset(7).items)


# --- options ----------------------------------------------------------------------------------


def test_option_errors(tmp_path):
    with pytest.raises(DnahnetError, match="--resume: no checkpoint"):
        resolve_options({"out": str(tmp_path / "none"), "config": "x"}, resume=True)
    with pytest.raises(DnahnetError, match="--config"):
        resolve_options({"out": str(tmp_path / "new"), "data": "d"}, resume=False)
    run_toy(tmp_path / "run", max_steps=2)
    with pytest.raises(DnahnetError, match="--resume to continue"):
        resolve_options({"out": str(tmp_path / "run"), "config": "x"}, resume=False)
    with pytest.raises(DnahnetError, match="not both"):
        run_toy(tmp_path / "other", max_steps=2, tokens=1000)


def resume_toy(out, **values):
    return train(resolve_options({"out": str(out), **values}, resume=True), resume=True,
                 model=ToyLM(), train_set=ListDataset(40), val_set=ListDataset(8, seed=1),
                 show_progress=False)


@pytest.mark.parametrize("content", [b"{", b"[1, 2]", b"\xff\xfe{"])
def test_resume_with_a_damaged_run_json_is_one_error_naming_it(tmp_path, content):
    run_toy(tmp_path / "run", max_steps=2)
    saved = tmp_path / "run" / "run.json"
    saved.write_bytes(content)
    state = tmp_path / "run" / "checkpoints" / "step-000002" / "train_state" / "state.json"
    with pytest.raises(DnahnetError) as error:
        resolve_options({"out": str(tmp_path / "run")}, resume=True)
    assert str(error.value) == (f"{saved}: not a JSON object of training options; restore it "
                                f'(the run\'s options are also under "options" in {state})')


def test_resume_with_a_wrongly_typed_option_in_run_json_is_one_error_naming_it(tmp_path):
    run_toy(tmp_path / "run", max_steps=2)
    saved = tmp_path / "run" / "run.json"
    options = json.loads(saved.read_text())
    saved.write_text(json.dumps({**options, "batch_size": "a"}))
    with pytest.raises(DnahnetError) as error:
        resolve_options({"out": str(tmp_path / "run")}, resume=True)
    assert str(error.value) == f"{saved}: training option 'batch_size' is 'a', not a whole number"
    saved.write_text(json.dumps({**options, "lr": 3, "time_limit": None}))  # ints are numbers
    assert resolve_options({"out": str(tmp_path / "run")}, resume=True).lr == 3


@pytest.mark.parametrize("name, reason", [
    ("model.safetensors", "not a readable safetensors file"),
    ("train_state/state.json", "not readable JSON"),
    ("train_state/optimizer.safetensors", "not a readable safetensors file"),
    ("train_state/rng.safetensors", "not a readable safetensors file"),
])
def test_resume_from_a_damaged_checkpoint_names_the_file_and_does_not_step_back(
    tmp_path, name, reason
):
    run_toy(tmp_path / "run", max_steps=4, save_every=2, eval_every=100)
    latest = tmp_path / "run" / "checkpoints" / "step-000004"
    damaged = latest / name
    damaged.write_bytes(b"\xff\xfe" + np.random.default_rng(0).bytes(998))  # random bytes
    message = (f"{damaged}: damaged checkpoint ({reason}); remove {latest} and --resume "
               "continues from step-000002")
    with pytest.raises(DnahnetError) as error:
        resume_toy(tmp_path / "run", max_steps=6)
    assert str(error.value) == message
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "run")] == [2, 4]  # nothing written
    shutil.rmtree(latest)  # as the message says
    assert resume_toy(tmp_path / "run", max_steps=6).step == 6


def test_a_damaged_only_checkpoint_and_a_state_without_counters(tmp_path):
    run_toy(tmp_path / "run", max_steps=2)
    latest = tmp_path / "run" / "checkpoints" / "step-000002"
    state = latest / "train_state" / "state.json"
    saved = json.loads(state.read_text())
    del saved["samples_seen"]
    state.write_text(json.dumps(saved))
    with pytest.raises(DnahnetError) as error:
        resume_toy(tmp_path / "run", max_steps=4)
    assert str(error.value) == (f"{state}: damaged checkpoint (not a training state); there is "
                                "no older checkpoint to resume from")


def test_resume_says_which_incomplete_checkpoint_it_skips(tmp_path, capsys):
    run_toy(tmp_path / "run", max_steps=4, save_every=2, eval_every=100)
    latest = tmp_path / "run" / "checkpoints" / "step-000004"
    shutil.rmtree(latest / "train_state")  # never left so by save_checkpoint: damaged since
    capsys.readouterr()
    assert resume_toy(tmp_path / "run").step == 4
    err = capsys.readouterr().err
    assert (f"resume: skipping {latest}: it has no train_state/state.json (an incomplete "
            "checkpoint); resuming from step-000002\n") in err
    assert "resuming " in err and "from step 2 (step-000002)" in err
    assert (latest / "train_state" / "state.json").is_file()  # written again at step 4


def test_a_warmup_as_long_as_the_run_is_a_warning(tmp_path, capsys):
    run_toy(tmp_path / "run", max_steps=2, warmup=1000000)
    assert ("warning: --warmup 1000000 is not shorter than the run's 2 steps: the learning "
            "rate never reaches --lr\n") in capsys.readouterr().err
    run_toy(tmp_path / "short", max_steps=3, warmup=2)
    run_toy(tmp_path / "default", max_steps=1)  # the default warm-up of a 1-step run is 1
    assert "warning" not in capsys.readouterr().err


def test_tokens_budget_sets_the_number_of_steps(tmp_path):
    result = run_toy(tmp_path / "run", max_steps=None, tokens=64 * 4 * 3)  # 3 steps of 4 x 64
    assert result.step == 3


def test_a_run_saved_before_the_rc_augment_rename_resumes(tmp_path):
    run_toy(tmp_path / "straight", max_steps=8, rc_augment=False)
    run_toy(tmp_path / "old", max_steps=8, stop_after=4, rc_augment=False)
    saved = json.loads((tmp_path / "old" / "run.json").read_text())
    saved["reverse_complement"] = saved.pop("rc_augment")  # run.json as written before
    (tmp_path / "old" / "run.json").write_text(json.dumps(saved))
    options = resolve_options({"out": str(tmp_path / "old")}, resume=True)
    assert options.rc_augment is False
    train(options, resume=True, model=ToyLM(seed=9), train_set=ListDataset(40),
          val_set=ListDataset(8, seed=1), show_progress=False)
    assert train_losses(tmp_path / "old") == train_losses(tmp_path / "straight")


class _CountingWrapper(torch.nn.Module):
    """Stands in for torch.compile's wrapper: forwards to the module and counts calls."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.calls = 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.module(*args, **kwargs)


def test_compile_wraps_what_the_step_runs_and_checkpoints_keep_plain_names(tmp_path, monkeypatch):
    from dnahnet_core.train import loop

    wrappers = []

    def counting(module, device):
        wrappers.append(_CountingWrapper(module))
        return wrappers[-1]

    monkeypatch.setattr(loop, "compiled_for_training", counting)
    run_toy(tmp_path / "plain", max_steps=3)
    assert not wrappers
    run_toy(tmp_path / "compiled", max_steps=3, compile=True)
    assert len(wrappers) == 1 and wrappers[0].calls == 3  # one micro-batch per step
    assert train_losses(tmp_path / "compiled") == train_losses(tmp_path / "plain")
    plain = (tmp_path / "plain" / "model.safetensors").read_bytes()
    assert (tmp_path / "compiled" / "model.safetensors").read_bytes() == plain


@pytest.mark.slow
def test_compiled_cpu_blocks_train_like_eager():
    """--compile on a CPU compiles the Mamba2 layers' full blocks: fp32 gives eager's loss
    and gradients; bf16 is as close to fp32 as eager bf16 is (it rounds less often)."""
    from dnahnet_core.model import build_model, load_config
    from dnahnet_core.model.blocks import MambaLayer
    from dnahnet_core.train.compile import compiled_for_training
    from dnahnet_core.train.metrics import token_nll
    from dnahnet_core.train.precision import autocast

    cpu = torch.device("cpu")
    tokens = torch.randint(0, 4, (1, 300), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(tokens, dtype=torch.bool)
    calls = []

    def loss_and_grads(precision: str, compile: bool):
        model = build_model(load_config("dnahnet-tiny"), seed=0)
        layers = [m for m in model.modules() if isinstance(m, MambaLayer)]
        for layer in layers:
            layer.block_length = 64  # several full blocks and a tail at every level
        net = compiled_for_training(model, cpu) if compile else model
        if compile:
            for layer in layers:
                layer.compiled_block = _counted(layer.compiled_block, calls)
        with autocast(cpu, precision):
            out = net(tokens, mask)
        loss = token_nll(out.logits, tokens, mask) / mask.sum() + 0.02 * out.ratio_loss
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()])

    reference_loss, reference = loss_and_grads("fp32", compile=False)
    loss, grads = loss_and_grads("fp32", compile=True)
    assert len(calls) >= 4  # full blocks of the outer and stage-2 layers went through it
    assert loss == pytest.approx(reference_loss, rel=1e-5)
    torch.testing.assert_close(grads, reference, rtol=1e-4, atol=1e-4 * reference.abs().max())

    def error(g):
        return ((g - reference).norm() / reference.norm()).item()

    eager_bf16 = loss_and_grads("bf16", compile=False)[1]
    compiled_bf16 = loss_and_grads("bf16", compile=True)[1]
    assert 0 < error(compiled_bf16) < max(1.5 * error(eager_bf16), 1e-3)


def _counted(function, calls: list):
    def wrapper(*args, **kwargs):
        calls.append(1)
        return function(*args, **kwargs)
    return wrapper


# --- with the real model and a prepared dataset -----------------------------------------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from tests.test_train_distributed import _prepare

    return _prepare(tmp_path_factory.mktemp("prepared") / "data")


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only contend on a shared CPU
    yield
    torch.set_num_threads(threads)


def real_options(prepared, out, **kw) -> dict:
    values = dict(data=str(prepared), config="dnahnet-tiny", out=str(out), max_steps=4,
                  batch_size=2, log_every=1, eval_every=4, eval_fragments=4, save_every=2,
                  device="cpu", lr=3e-3)
    values.update(kw)
    return values


def test_dnahnet_tiny_resume_is_bit_for_bit(prepared, tmp_path, one_thread):
    train(resolve_options(real_options(prepared, tmp_path / "straight"), resume=False),
          show_progress=False)
    first = train(resolve_options(real_options(prepared, tmp_path / "split", stop_after=2),
                                  resume=False), show_progress=False)
    assert first.status == "paused"
    second = train(resolve_options({"out": str(tmp_path / "split")}, resume=True), resume=True,
                   show_progress=False)
    assert second.status == "finished" and second.step == 4
    assert train_losses(tmp_path / "straight") == train_losses(tmp_path / "split")
    kinds = [r["kind"] for r in read_metrics(tmp_path / "split")]
    assert kinds.count("baseline") == 1 and kinds[0] == "baseline"  # once per run
    a = load_weights(tmp_path / "straight")
    b = load_weights(tmp_path / "split")
    assert all(torch.equal(a[k], b[k]) for k in a)
    from dnahnet_core.model import load_model

    model = load_model(str(tmp_path / "split"))  # the run directory is a model directory
    assert model.config.name == "dnahnet-tiny"


def load_weights(run_dir):
    from safetensors.torch import load_file

    return load_file(str(run_dir / "model.safetensors"))


def test_dnahnet_stage_multipliers_survive_the_schedule():
    from dnahnet_core.model import build_model, load_config

    model = build_model(load_config("dnahnet-tiny"), seed=0)
    opt = build_optimizer(model, lr=1e-3)
    mults = {g["lr_mult"] for g in opt.param_groups}
    assert len(mults) > 1  # outer stages learn faster
    base = WarmupCosine(1e-3, 0, 10).apply(opt, 5)
    for group in opt.param_groups:
        assert group["lr"] == pytest.approx(base * group["lr_mult"])
    norms = [p for n, p in model.named_parameters() if "norm" in n or n.endswith("bias")]
    no_decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    assert norms and all(id(p) in no_decay for p in norms)


def test_baseline_trains_with_the_same_options(prepared, tmp_path, one_thread):
    result = train(resolve_options(real_options(prepared, tmp_path / "tf",
                                                config="transformer-small", max_steps=2),
                                   resume=False), show_progress=False)
    record = read_metrics(tmp_path / "tf")[-2]
    assert result.step == 2 and record["kind"] == "train" and record["ratio_loss"] == 0
    assert not any(k.startswith("compression_") for k in record)


def test_cli_train_evaluate_and_plot(prepared, tmp_path, one_thread):
    from typer.testing import CliRunner

    from dnahnet_cli.app import app

    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(prepared), "--config", "dnahnet-tiny",
                                 "--out", str(run), "--max-steps", "2", "--batch-size", "2",
                                 "--log-every", "1", "--eval-fragments", "4", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    again = runner.invoke(app, ["train", "--out", str(run), "--resume"])  # already finished
    assert again.exit_code == 0 and "nothing to do" in again.output, again.output
    result = runner.invoke(app, ["evaluate", "--model", str(run), "--data", str(prepared),
                                 "--split", "val", "--max-fragments", "4", "--json"])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout.strip().splitlines()[-1])
    val = [r for r in read_metrics(run) if r["kind"] == "val"][-1]
    assert scored["bpb"] == pytest.approx(val["bpb"], rel=1e-5)
    assert scored["split"] == "val" and "compression_1" in scored
    from dnahnet_core.data.markov import split_baselines

    baselines = split_baselines(prepared, "val", 4)  # evaluate's fragments, the run's too
    assert scored["baselines"] == pytest.approx(baselines)
    assert baselines["uniform"] == 2.0 and baselines["markov_fit_nucleotides"] > 0
    [record] = [r for r in read_metrics(run) if r["kind"] == "baseline"]
    assert record == pytest.approx({"kind": "baseline", "step": 0, "tokens": 0, **baselines})
    text = runner.invoke(app, ["evaluate", "--model", str(run), "--data", str(prepared),
                               "--split", "val", "--max-fragments", "4"])
    assert f"order-5 Markov {baselines['markov_order_5']:.4f} bits" in text.stdout
    result = runner.invoke(app, ["plot-metrics", str(run), str(run), "-o",
                                 str(tmp_path / "c.png"), "--label", "a", "--label", "b"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_user_errors_are_one_line(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "dnahnet_cli", "train", "--out",
                           str(tmp_path / "missing"), "--resume"],
                          capture_output=True, text=True, env=dict(os.environ, WORLD_SIZE="1"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"dnahnet: error: --resume: no checkpoint in {tmp_path / 'missing'}"]


def test_tensorboard_without_the_package_is_a_clear_error(tmp_path):
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed")
    with pytest.raises(DnahnetError, match="pip install tensorboard"):
        run_toy(tmp_path / "run", max_steps=1, tensorboard=True)
    assert not (tmp_path / "run").exists()  # no run.json left to block the same command
    assert run_toy(tmp_path / "run", max_steps=1).step == 1


def test_resume_refuses_another_config_and_a_finished_run_has_nothing_to_do(tmp_path):
    run_toy(tmp_path / "run", max_steps=2)
    with pytest.raises(DnahnetError, match="a run's model cannot change on --resume"):
        resolve_options({"out": str(tmp_path / "run"), "config": "dnahnet-small"}, resume=True)
    again = train(resolve_options({"out": str(tmp_path / "run")}, resume=True), resume=True,
                  model=ToyLM(), train_set=ListDataset(40), show_progress=False)
    assert again.step == 2 and again.checkpoint is None


def test_tokens_on_a_resume_with_another_global_batch_keep_the_budget(tmp_path):
    """--tokens is a nucleotide budget: steps done at batch 4, the rest at batch 8."""
    first = run_toy(tmp_path / "run", max_steps=None, tokens=40 * 64, batch_size=4,
                    stop_after=4)
    assert first.status == "paused" and first.step == 4  # 10 steps of 4 x 64 nt planned
    options = resolve_options({"out": str(tmp_path / "run"), "batch_size": 8}, resume=True)
    done = train(options, resume=True, model=ToyLM(), train_set=ListDataset(40),
                 show_progress=False)
    assert done.step == 4 + 3  # (2,560 - 4 x 4 x 64) nt / (8 x 64) nt = 3 steps


def test_a_new_run_that_fails_before_its_first_checkpoint_leaves_nothing(tmp_path):
    """Nothing to resume: run.json and metrics.jsonl go, and the directory it made."""
    with pytest.raises(NonFinite, match="no checkpoint was written yet"):
        run_toy(tmp_path / "run", model=NanAt(bad_call=3), save_every=100, eval_every=100)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("the user's\n")
    with pytest.raises(NonFinite):
        run_toy(tmp_path / "mine", model=NanAt(bad_call=3), save_every=100, eval_every=100)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_fp32_on_cuda_means_ieee_float32_and_a_users_choice_is_kept(monkeypatch, request):
    """mamba-ssm's Triton products default to TF32 on a GPU (a relative error of ~4e-4 in
    the SSD scan, measured in Triton's interpreter with TF32 rounding); fp32 turns that off."""
    from dnahnet_core.train import precision

    monkeypatch.delenv("TRITON_F32_DEFAULT", raising=False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    request.addfinalizer(partial(torch.set_float32_matmul_precision,
                                 torch.get_float32_matmul_precision()))
    torch.set_float32_matmul_precision("high")  # TF32 allowed
    for device, name in ((torch.device("cpu"), "fp32"), (torch.device("cuda"), "bf16")):
        with warnings.catch_warnings():  # without a GPU: "CUDA is not available"
            warnings.simplefilter("ignore")
            precision.autocast(device, name)  # a CPU, or bf16, changes nothing
        assert "TRITON_F32_DEFAULT" not in os.environ and torch.backends.cudnn.allow_tf32
    with precision.autocast(torch.device("cuda"), "fp32"):  # needs no GPU to set up
        pass
    assert os.environ["TRITON_F32_DEFAULT"] == "ieee"
    assert not torch.backends.cudnn.allow_tf32
    assert torch.get_float32_matmul_precision() == "highest"
    monkeypatch.setenv("TRITON_F32_DEFAULT", "tf32")  # the user's own choice, for speed
    precision.exact_fp32()
    assert os.environ["TRITON_F32_DEFAULT"] == "tf32"


def test_plot_metrics_refuses_a_run_with_nothing_to_plot(tmp_path):
    """A metrics file cut before its first training record, or whose losses are all NaN,
    is one error, not an empty figure written with exit 0."""
    from dnahnet_core.train.plots import plot_runs

    cut, nan = tmp_path / "cut", tmp_path / "nan"
    for run in (cut, nan):
        run.mkdir()
    (cut / "metrics.jsonl").write_text(
        '{"kind": "baseline", "uniform": 2.0, "markov_order_0": 1.98}\n{"kind": "tr')
    (nan / "metrics.jsonl").write_text(
        '{"kind": "train", "step": 1, "bpb": NaN}\n{"kind": "val", "step": 1, "bpb": NaN}\n')
    for run in (cut, nan):
        with pytest.raises(DnahnetError, match=r"metrics.jsonl: no training or validation "
                                                r"record with a finite bpb and step to plot"):
            plot_runs([run], tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()
