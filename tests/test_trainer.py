"""The Accelerate trainer: exact resume, seeding, schedule, time limit, evaluation, bf16."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
from helpers import (
    fake_embeddings,
    make_trainer,
    param_snapshot,
    states_equal,
    tiny_inverter,
    train_losses,
)

import invert.env
from invert.errors import CheckpointError, InvertError

# 20 texts, batches of 6 with grad accumulation 2: epochs end mid-step and on a short batch.
RESUME_TEXTS = [f"sentence number {i} is here" for i in range(20)]


def _resume_run(output_dir, seed=0, **overrides):
    """Model + trainer for the resume tests: dropout on, grad accumulation 2."""
    model = tiny_inverter("prefix_lm", projection_dropout=0.1, max_text_tokens=8)
    config = dict(
        max_steps=12,
        batch_size=6,
        grad_accum_steps=2,
        lr=1e-3,
        save_every=5,
        log_every=2,
        seed=seed,
    )
    config.update(overrides)
    trainer = make_trainer(
        model,
        output_dir,
        texts=RESUME_TEXTS,
        embeddings=fake_embeddings(len(RESUME_TEXTS)),
        **config,
    )
    return model, trainer


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    model, trainer = _resume_run(tmp_path_factory.mktemp("unbroken"))
    result = trainer.train()
    return model, result


def test_killed_and_resumed_run_matches_uninterrupted_bit_for_bit(uninterrupted, tmp_path):
    reference, reference_result = uninterrupted
    init, _ = _resume_run(tmp_path / "unused")

    killed_model, killed = _resume_run(tmp_path / "run")
    killed.train(stop_after=7)  # "killed" at step 7; the last checkpoint is step 5
    assert killed.step == 7
    assert [p.name for p in sorted((tmp_path / "run" / "checkpoints").iterdir())] == [
        "step-0000005"
    ]
    state = json.loads(
        (tmp_path / "run" / "checkpoints" / "step-0000005" / "trainer_state.json").read_text()
    )
    assert state["step"] == 5

    resumed_model, resumed = _resume_run(tmp_path / "run", resume_from="latest")
    result = resumed.train()
    assert result.steps == resumed.step == 12
    assert states_equal(resumed_model, reference)
    assert not states_equal(resumed_model, init)  # it trained
    # Steps logged after the first post-resume window match too (step 6's window differs:
    # the uninterrupted run's also holds step 5's micro-batches).
    late = lambda history: [(h["step"], h["train/loss"]) for h in history if h["step"] >= 8]  # noqa: E731
    assert late(result.history) == late(reference_result.history)
    assert [h["step"] for h in result.history] == [2, 4, 6, 8, 10, 12]


def test_resume_from_explicit_checkpoint_folder(uninterrupted, tmp_path):
    reference, _ = uninterrupted
    _, first = _resume_run(tmp_path / "a")
    first.train(stop_after=5)
    checkpoint = tmp_path / "a" / "checkpoints" / "step-0000005"
    model, resumed = _resume_run(tmp_path / "b", resume_from=str(checkpoint))
    resumed.train()
    assert states_equal(model, reference)


def test_same_seed_same_weights_different_seed_different(uninterrupted, tmp_path):
    reference, _ = uninterrupted
    again, trainer = _resume_run(tmp_path / "same", save_every=0)
    trainer.train()
    assert states_equal(again, reference)
    other, trainer = _resume_run(tmp_path / "other", seed=1, save_every=0)
    trainer.train()
    assert not states_equal(other, reference)


def test_resume_from_empty_folder_raises_checkpoint_error(tmp_path):
    _, trainer = _resume_run(tmp_path / "fresh", resume_from="latest")
    with pytest.raises(CheckpointError, match="holds no complete checkpoint"):
        trainer.train()
    (tmp_path / "empty").mkdir()
    _, trainer = _resume_run(tmp_path / "fresh", resume_from=str(tmp_path / "empty"))
    with pytest.raises(CheckpointError, match="not a resumable checkpoint"):
        trainer.train()


def test_keeps_only_the_newest_checkpoints(tmp_path):
    _, trainer = _resume_run(tmp_path, max_steps=8, save_every=2, keep_checkpoints=2)
    trainer.train()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-0000006", "step-0000008"]


def test_warmup_then_cosine_to_zero(tmp_path):
    peak, warmup, steps = 1e-2, 4, 12
    model = tiny_inverter("prefix_lm")
    trainer = make_trainer(
        model, tmp_path, max_steps=steps, lr=peak, warmup_steps=warmup, log_every=1
    )
    history = trainer.train().history
    lrs = [h["train/lr"] for h in history]
    assert [h["step"] for h in history] == list(range(1, steps + 1))
    # The lr logged after step s is the one step s + 1 will use.
    cosine = lambda s: 0.5 * (1 + math.cos(math.pi * (s - warmup) / (steps - warmup)))  # noqa: E731
    expected = [peak * ((s + 1) / warmup if s < warmup else cosine(s)) for s in range(1, steps + 1)]
    assert lrs == pytest.approx(expected, abs=1e-12)
    assert max(lrs) == pytest.approx(peak)
    rise, decay = lrs[: warmup - 1], lrs[warmup - 2 :]  # logged after steps 1..3, then 3..12
    assert all(a < b for a, b in zip(rise, rise[1:], strict=False))
    assert all(a >= b for a, b in zip(decay, decay[1:], strict=False))
    assert rise[-1] == decay[1] == pytest.approx(peak)
    assert lrs[7] == pytest.approx(peak / 2)  # after step 8: half-way through the cosine
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert json.loads((tmp_path / "history.json").read_text()) == history


def test_lr_by_prefix_sets_group_learning_rates(tmp_path):
    model = tiny_inverter("prefix_lm")
    trainer = make_trainer(model, tmp_path, max_steps=1, lr=1e-4, lr_by_prefix={"projection": 5e-3})
    by_lr = {
        group["initial_lr"]: {id(p) for p in group["params"]}
        for group in trainer.optimizer.param_groups
    }
    projection = {id(p) for p in model.projection.parameters()}
    assert set(by_lr) == {1e-4, 5e-3}
    assert by_lr[5e-3] == projection and not (by_lr[1e-4] & projection)


def test_max_minutes_stops_early(tmp_path):
    model = tiny_inverter("prefix_lm")
    trainer = make_trainer(model, tmp_path, max_steps=50, lr=1e-3, max_minutes=1e-6)
    result = trainer.train()
    assert result.stopped_early
    assert result.steps == trainer.step == 1
    assert (tmp_path / "history.json").exists()


@pytest.mark.parametrize("clock", ["steps", "time"])
def test_time_clock_decays_the_schedule_by_the_deadline(tmp_path, monkeypatch, clock):
    """A 1-minute run on a clock that jumps 10 s per reading: with schedule_clock="time" the
    cosine reaches zero at the deadline; counted in steps (max_steps=1000) it has barely begun."""
    import invert.training.trainer as trainer_module

    ticks = iter(range(0, 10**6, 10))
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: float(next(ticks)))
    peak = 1e-2
    trainer = make_trainer(
        tiny_inverter("prefix_lm"), tmp_path, max_steps=1000, lr=peak, log_every=1,
        max_minutes=1.0, schedule_clock=clock,
    )
    result = trainer.train()
    lrs = [h["train/lr"] for h in result.history]
    assert result.stopped_early and result.steps < 20
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))
    if clock == "time":
        assert lrs[0] < peak and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    else:
        assert lrs[-1] > 0.99 * peak


def test_finished_run_is_not_stopped_early(tmp_path):
    result = make_trainer(tiny_inverter("prefix_lm"), tmp_path, max_steps=2, max_minutes=60).train()
    assert result.steps == 2 and not result.stopped_early


@pytest.mark.parametrize(("max_steps", "eval_steps"), [(7, [3, 6, 7]), (6, [3, 6])])
def test_eval_fn_runs_every_eval_every_steps_and_at_the_end(tmp_path, max_steps, eval_steps):
    model = tiny_inverter("prefix_lm", projection_dropout=0.5)
    calls = []

    def eval_fn(m, step):
        assert m is model
        calls.append(step)
        m.eval()  # the trainer must switch back to train mode afterwards
        return {"score": float(step)}

    trainer = make_trainer(
        model, tmp_path, max_steps=max_steps, eval_every=3, eval_fn=eval_fn, lr=1e-3
    )
    history = trainer.train().history
    assert calls == eval_steps
    evals = [h for h in history if any(k.startswith("eval/") for k in h)]
    assert [(h["step"], h["eval/score"]) for h in evals] == [(s, float(s)) for s in eval_steps]
    assert model.training


def _reset_accelerate_state() -> None:
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate keeps one process-wide state; a precision change needs it cleared (before
    and after, so the fp32 tests that follow are not run under bf16)."""
    _reset_accelerate_state()
    yield
    _reset_accelerate_state()


@pytest.fixture
def bf16_hardware(monkeypatch):
    """Runs bf16 as asked even on a CPU that only emulates it (slow, fine for tiny models)."""
    monkeypatch.setattr(invert.env, "native_bf16", lambda device="cpu": True)


def test_bf16_mixed_precision_trains_on_cpu(tmp_path, fresh_accelerate_state, bf16_hardware):
    model = tiny_inverter("prefix_lm")
    trainer = make_trainer(
        model, tmp_path, max_steps=40, lr=3e-3, warmup_steps=5, log_every=5, mixed_precision="bf16"
    )
    assert trainer.accelerator.mixed_precision == "bf16"
    dtypes = []
    hook = model.lm.model.layers[0].mlp.down_proj.register_forward_hook(
        lambda module, args, out: dtypes.append(out.dtype)
    )
    try:
        result = trainer.train()
    finally:
        hook.remove()
    assert set(dtypes) == {torch.bfloat16}  # autocast really ran the matmuls in bf16
    losses = train_losses(result.history)
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.75 * losses[0], losses
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses
    assert next(model.parameters()).dtype == torch.float32  # fp32 master weights


def test_trainer_refuses_bad_settings(tmp_path):
    model = tiny_inverter("prefix_lm")
    with pytest.raises(InvertError, match="schedule"):
        make_trainer(model, tmp_path, schedule="step")
    with pytest.raises(InvertError, match="schedule_clock"):
        make_trainer(model, tmp_path, schedule_clock="wall")
    with pytest.raises(InvertError, match="needs max_minutes"):
        make_trainer(model, tmp_path, schedule_clock="time")
    with pytest.raises(InvertError, match="empty"):
        make_trainer(model, tmp_path, texts=[], embeddings=torch.zeros(0, 16))
    frozen = tiny_inverter("prefix_lm")
    for p in frozen.parameters():
        p.requires_grad = False
    with pytest.raises(InvertError, match="no trainable parameters"):
        make_trainer(frozen, tmp_path)


def test_stop_after_keeps_model_changed_but_unfinished(tmp_path):
    model = tiny_inverter("prefix_lm")
    before = param_snapshot(model)
    trainer = make_trainer(model, tmp_path, max_steps=10, lr=1e-3)
    result = trainer.train(stop_after=3)
    assert result.steps == 3 and not result.stopped_early
    assert any(not torch.equal(before[n], p.detach().cpu()) for n, p in model.named_parameters())


def test_second_trainer_in_process_may_change_precision(tmp_path, fresh_accelerate_state, bf16_hardware):
    make_trainer(tiny_inverter("prefix_lm"), tmp_path / "fp32", max_steps=1).train()
    trainer = make_trainer(
        tiny_inverter("prefix_lm"), tmp_path / "bf16", max_steps=1, mixed_precision="bf16"
    )
    assert trainer.accelerator.mixed_precision == "bf16"


def test_bf16_falls_back_to_fp32_where_not_faster(tmp_path, fresh_accelerate_state, monkeypatch, caplog):
    # No AMX, and the probe finds bf16 autocast no faster than fp32 (an emulating CPU, or a
    # Xeon whose AVX512-BF16 only converts): bf16 counts as no.
    monkeypatch.delenv("INVERT_CPU_BF16", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(invert.env, "cpu_bf16_speedup", lambda: 0.6)
    monkeypatch.setattr(invert.env, "_WARNED_FP32", set())  # warned once a process
    assert not invert.env.native_bf16("cpu")
    with caplog.at_level(logging.WARNING, logger="invert.env"):
        trainer = make_trainer(tiny_inverter("prefix_lm"), tmp_path, max_steps=1, mixed_precision="bf16")
    assert trainer.accelerator.mixed_precision == "no"
    assert trainer.config.mixed_precision == "no"  # what ran is what is recorded
    assert "not faster than fp32" in caplog.text
    # Measured faster (an AMD EPYC with AVX512-BF16): bf16 as asked.
    monkeypatch.setattr(invert.env, "cpu_bf16_speedup", lambda: 1.8)
    assert invert.env.native_bf16("cpu")
    assert invert.env.resolve_mixed_precision("bf16") == "bf16"
    assert invert.env.resolve_mixed_precision("no") == "no"
    # AVX2 only: emulated, so no, without timing anything.
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not invert.env.native_bf16("cpu")
    # AMX: yes, whatever the probe.
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    monkeypatch.setattr(invert.env, "cpu_bf16_speedup", lambda: 0.6)
    assert invert.env.native_bf16("cpu")


def test_bf16_override_pins_the_precision(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(invert.env, "cpu_bf16_speedup", lambda: 1.8)
    monkeypatch.setenv("INVERT_CPU_BF16", "0")
    assert invert.env.resolve_mixed_precision("bf16") == "no"
    monkeypatch.setattr(invert.env, "cpu_bf16_speedup", lambda: 0.6)
    monkeypatch.setenv("INVERT_CPU_BF16", "1")
    assert invert.env.resolve_mixed_precision("bf16") == "bf16"
    assert invert.env.resolve_mixed_precision("no") == "no"  # never turns fp32 into bf16
    # It pins an AMX CPU too (the test suite runs fp32 on every machine).
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    monkeypatch.setenv("INVERT_CPU_BF16", "0")
    assert invert.env.resolve_mixed_precision("bf16") == "no"


def test_cpu_bf16_probe_measures_a_ratio():
    # A small shape: an AVX2-only CI machine emulates bf16 slowly.
    speedup = invert.env.cpu_bf16_speedup(tokens=8, width=16, hidden=32)
    assert speedup > 0
    assert invert.env.cpu_bf16_speedup(tokens=8, width=16, hidden=32) == speedup  # once per process
    # Its first caller may be decoding: it times backward passes under no_grad and inference_mode too.
    with torch.no_grad():
        assert invert.env.cpu_bf16_speedup(tokens=8, width=16, hidden=24) > 0
    with torch.inference_mode():
        assert invert.env.cpu_bf16_speedup(tokens=8, width=16, hidden=16) > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tiny_inverter_trains_on_cuda_in_bf16(tmp_path):
    """The GPU tier (``pytest -m gpu`` on a machine with CUDA): same trainer, bf16 autocast."""
    model = tiny_inverter("prefix_lm")
    trainer = make_trainer(model, tmp_path, max_steps=30, lr=3e-3, warmup_steps=0,
                           mixed_precision="bf16")  # fmt: skip
    result = trainer.train()
    losses = [h["train/loss"] for h in result.history if "train/loss" in h]
    assert next(model.parameters()).is_cuda and trainer.config.mixed_precision == "bf16"
    assert losses[-1] < losses[0]
