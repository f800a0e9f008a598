"""Process-wide defaults: offline Hugging Face hub, cache folders, W&B folders.

invert runs offline by default because a hub lookup without internet hangs ~75 s before it
fails. Users with internet opt in with ``INVERT_ALLOW_HUB=1`` (or ``HF_HUB_OFFLINE=0``).
"""

from __future__ import annotations

import os
from pathlib import Path

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


def native_bf16(device: str = "cpu") -> bool:
    """True where bf16 autocast makes matrix products faster rather than slower.

    On a CPU that takes AMX tiles: AVX512-BF16 alone only converts, and the bf16 autocast
    around it (casts, unfused kernels) made SmolLM2 training steps slower than fp32 on such a
    Xeon; on an AVX2-only CPU PyTorch emulates bf16, far slower still (docs/results.md).
    """
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def resolve_mixed_precision(requested: str, device: str | None = None) -> str:
    """``requested`` (``no`` or ``bf16``), except that ``bf16`` becomes ``no``, with a
    warning, where :func:`native_bf16` says bf16 would be emulated (and far slower) on
    ``device`` (default: :func:`default_device`)."""
    device = default_device(device)
    if requested == "bf16" and not native_bf16(device):
        import logging

        logging.getLogger(__name__).warning(
            "bf16 requested but this %s has no bf16 matrix hardware (AMX); running in fp32, "
            "which is faster here than bf16 autocast", device
        )
        return "no"
    return requested
