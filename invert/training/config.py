"""The trainer's settings (the ``train`` config group) and what a training run returns."""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEDULES = ("cosine", "linear", "constant")


@dataclass
class TrainerConfig:
    """Optimization and bookkeeping settings (the ``train`` config group).

    Attributes:
        output_dir: Run folder; checkpoints go to ``output_dir/checkpoints/step-N``.
        max_steps: Optimizer steps (the schedule's length).
        batch_size: Examples per micro-batch per process.
        grad_accum_steps: Micro-batches per optimizer step.
        lr: Peak learning rate.
        lr_by_prefix: Learning rates for parameters whose name starts with a prefix
            (e.g. ``{"projection": 1e-3}``: a fresh projection wants more than a pretrained LM).
        weight_decay: AdamW weight decay (not applied to biases and norms).
        warmup_steps: Linear warm-up length.
        schedule: ``cosine``, ``linear`` or ``constant`` decay after warm-up.
        schedule_clock: ``steps``: the decay runs over ``max_steps``. ``time``: it runs over
            whichever ends first, ``max_steps`` or ``max_minutes``, so a run budgeted by wall
            time (a step count unknown in advance, e.g. on a new GPU) still ends fully decayed.
        max_grad_norm: Gradient clipping (0 disables).
        mixed_precision: ``no`` or ``bf16`` (autocast; bf16 matmuls are fast on AMX CPUs too;
            where the hardware would only emulate bf16 the trainer runs in fp32 and warns).
        seed: Seeds data order and dropout (a run seeds the model's init with the same seed
            before building it: :func:`invert.reporting.run_context.open_run`).
        log_every: Steps between logged losses.
        eval_every: Steps between evaluations (0: only at the end).
        save_every: Steps between resumable checkpoints (0: none).
        keep_checkpoints: How many resumable checkpoints to keep.
        max_minutes: Stop early (and say so) once training has used this much wall time.
        resume_from: A checkpoint folder, or ``latest`` for the newest complete one under
            ``output_dir``. It must come from a run of the same settings (seed, batch, schedule).
        overwrite: Train into an ``output_dir`` that holds another run's checkpoints, deleting
            them (otherwise refused, so no run is lost or mixed with another).
    """

    output_dir: str = "outputs/run"
    max_steps: int = 100
    batch_size: int = 16
    grad_accum_steps: int = 1
    lr: float = 1e-4
    lr_by_prefix: dict[str, float] = field(default_factory=dict)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: str = "cosine"
    schedule_clock: str = "steps"
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0
    save_every: int = 0
    keep_checkpoints: int = 2
    max_minutes: float | None = None
    resume_from: str | None = None
    overwrite: bool = False


@dataclass
class TrainResult:
    """What a training run did: its step, history and throughput."""

    steps: int
    history: list[dict[str, float]]
    seconds: float
    examples_per_second: float
    tokens_per_second: float
    stopped_early: bool = False
