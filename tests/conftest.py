"""Session-wide test defaults: offline hub, no W&B network, a throwaway invert cache."""

from __future__ import annotations

import os

import pytest

# Before anything imports huggingface_hub / transformers (they read these at import time).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# fp32 wherever a config asks for bf16, whatever this CPU's measured bf16 speed: the same test,
# the same numbers on every CI machine (the probe has its own tests).
os.environ.setdefault("INVERT_CPU_BF16", "0")


@pytest.fixture(autouse=True, scope="session")
def _session_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Points INVERT_CACHE_DIR at a fresh folder for the session; restores it afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INVERT_CACHE_DIR", str(tmp_path_factory.mktemp("invert-cache")))
        yield


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine, two threads spin-wait on each other
    and tiny models train 10x slower."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection fails the test: "fails fast" means "never tries the network"."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"tried the network: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
