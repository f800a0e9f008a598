"""Process-wide defaults: offline Hugging Face hub, cache folders, W&B folders.

invert runs offline by default because a hub lookup without internet hangs ~75 s before it
fails. Users with internet opt in with ``INVERT_ALLOW_HUB=1`` (or ``HF_HUB_OFFLINE=0``).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path
from typing import Any

from invert.errors import HubUnavailableError

_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def configure_offline_defaults() -> None:
    """Sets the hub to offline unless the user opted in; never overrides an explicit setting."""
    if os.environ.get("INVERT_ALLOW_HUB", "0") == "1":
        os.environ.setdefault("HF_HUB_OFFLINE", "0")
    for var in _OFFLINE_VARS:
        os.environ.setdefault(var, os.environ.get("HF_HUB_OFFLINE", "1"))


def hub_allowed() -> bool:
    """True when the user opted in to Hugging Face hub access."""
    return os.environ.get("HF_HUB_OFFLINE", "1").lower() in ("0", "false", "no")


def require_hub(name: str, kind: str, packaged_default: str) -> None:
    """Fails fast when ``name`` is a hub id but the hub is off.

    Args:
        name: The hub id the user asked for.
        kind: What it is ("embedder", "causal LM", "corpus"), for the message.
        packaged_default: The offline alternative to suggest.

    Raises:
        HubUnavailableError: Hub access is off.
    """
    if not hub_allowed():
        raise HubUnavailableError(
            f"{kind} {name!r} is neither a packaged name nor a local path, and the Hugging Face "
            f"hub is off (HF_HUB_OFFLINE=1, invert's default). Use the packaged default "
            f"{packaged_default!r}, pass a local folder, or opt in to the hub with "
            f"INVERT_ALLOW_HUB=1 when you have internet."
        )


def default_device(device: str | None = None) -> str:
    """``device`` if given, else ``cuda`` when a GPU is visible, else ``cpu``.

    Loaded models and embedders go there, so the same command uses a GPU where one exists.
    """
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cache_dir() -> Path:
    """Folder for embeddings, dequantized weights and other derived files (``INVERT_CACHE_DIR``)."""
    root = os.environ.get("INVERT_CACHE_DIR") or Path.home() / ".cache" / "invert"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def configure_wandb_dirs(run_dir: str | Path) -> None:
    """Points every W&B folder under ``run_dir`` so nothing is written into ``$HOME``."""
    run_dir = Path(run_dir)
    for var, sub in (
        ("WANDB_DIR", ""),
        ("WANDB_CACHE_DIR", "wandb-cache"),
        ("WANDB_DATA_DIR", "wandb-data"),
        ("WANDB_CONFIG_DIR", "wandb-config"),
    ):
        path = run_dir / sub if sub else run_dir
        path.mkdir(parents=True, exist_ok=True)
        os.environ[var] = str(path)


# bf16 autocast must beat fp32 by this much on the probe to be used on a CPU without AMX: the
# probe is a small stand-in for a whole step, and a ratio near 1 could flip between runs.
BF16_MIN_SPEEDUP = 1.25
# Overrides the probe (``1``: bf16 where requested, ``0``: fp32), to pin a run's precision.
BF16_ENV = "INVERT_CPU_BF16"


def native_bf16(device: str = "cpu") -> bool:
    """True where bf16 autocast makes matrix products faster rather than slower.

    On a GPU, where the device supports bf16. On a CPU with AMX tiles, always. On other CPUs
    with AVX-512 it depends on the chip and is measured once per process
    (:func:`cpu_bf16_speedup`); without AVX-512 never: an
    AVX2-only CPU emulates bf16 (a quick-start step 28x slower); a 2-core Xeon with AVX512-BF16
    ran SmolLM2 steps at batch 8 slower than fp32, while a 2-core AMD EPYC with AVX512-BF16 ran
    the quick start's steps and decoding ~1.4x faster (docs/results.md). ``INVERT_CPU_BF16=1``
    or ``0`` overrides the measurement.
    """
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    forced = os.environ.get(BF16_ENV, "").strip()
    if forced in ("0", "1"):  # pins the precision on every CPU, AMX ones too
        return forced == "1"
    if bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()):
        return True
    if "AVX512" not in torch.backends.cpu.get_cpu_capability():
        return False  # emulated: far slower, and not worth timing
    return cpu_bf16_speedup() >= BF16_MIN_SPEEDUP


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup(tokens: int = 256, width: int = 576, hidden: int = 1536) -> float:
    """fp32 time over bf16-autocast time for a linear layer's forward and backward on this CPU.

    The shape is one MLP projection of SmolLM2-135M at a small training batch. Each side
    takes the best of 5 timings of 3 passes, after a warm-up, so a busy moment counts less.
    """
    import torch

    # The first caller may be decoding under no_grad or inference_mode: the probe needs grads.
    with torch.inference_mode(False), torch.enable_grad():
        speedup = _linear_seconds(tokens, width, hidden, False) / _linear_seconds(tokens, width, hidden, True)
    logging.getLogger(__name__).info("bf16 autocast on this CPU: %.2fx fp32's speed", speedup)
    return speedup


def _linear_seconds(tokens: int, width: int, hidden: int, bf16: bool) -> float:
    """Best of 5 timings of 3 forward and backward passes of one linear layer, after a warm-up."""
    import torch

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(tokens, width, generator=generator)
    weight = torch.randn(hidden, width, generator=generator, requires_grad=True)

    def passes() -> None:
        for _ in range(3):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                y = torch.nn.functional.linear(x, weight)
            y.float().square().mean().backward()
            weight.grad = None

    passes()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        passes()
        best = min(best, time.perf_counter() - start)
    return best


def precision_context(precision: str, device: str | None = None) -> Any:
    """``torch.autocast`` to bf16 on ``device``'s type if ``precision`` is ``bf16`` as resolved
    by :func:`resolve_mixed_precision` (so fp32 where bf16 is slower), else a no-op context."""
    import torch

    device = default_device(device)
    enabled = resolve_mixed_precision(precision, device) == "bf16"
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)


def resolve_mixed_precision(requested: str, device: str | None = None) -> str:
    """``requested`` (``no`` or ``bf16``), except that ``bf16`` becomes ``no``, with a
    warning (once a process), where :func:`native_bf16` says bf16 autocast would be slower
    than fp32 on ``device`` (default: :func:`default_device`)."""
    device = default_device(device)
    if requested == "bf16" and not native_bf16(device):
        log = logging.getLogger(__name__)
        (log.warning if device not in _WARNED_FP32 else log.debug)(
            "bf16 requested but bf16 autocast is not faster than fp32 on this %s (measured, or "
            "%s=0); running in fp32", device, BF16_ENV
        )
        _WARNED_FP32.add(device)
        return "no"
    return requested


_WARNED_FP32: set[str] = set()  # devices already warned that bf16 runs as fp32
