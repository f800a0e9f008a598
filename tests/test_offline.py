"""Importing invert turns the Hugging Face hub off unless the user opted in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from invert.env import configure_offline_defaults, hub_allowed, require_hub
from invert.errors import HubUnavailableError

REPO = Path(__file__).resolve().parents[1]
HUB_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "INVERT_ALLOW_HUB")

PROBE = """
import json, os
import invert
import huggingface_hub.constants as hub
print(json.dumps({
    "env": {v: os.environ.get(v) for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")},
    "hub_offline": hub.HF_HUB_OFFLINE,
}))
"""


CASES = {"default": {}, "opt_in": {"INVERT_ALLOW_HUB": "1"}}


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, dict]:
    """``import invert`` in fresh interpreters (run side by side: each import takes seconds)
    whose env has no hub settings but the case's."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in HUB_VARS and not k.startswith(("HF_", "TRANSFORMERS_"))
    }
    cache = tmp_path_factory.mktemp("offline-cache")
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", PROBE],
            env={**base, **extra, "INVERT_CACHE_DIR": str(cache), "WANDB_MODE": "disabled"},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, extra in CASES.items()
    }
    seen = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        seen[name] = json.loads(out.strip().splitlines()[-1])
    return seen


def test_import_turns_hub_off_by_default(imported):
    seen = imported["default"]
    assert seen["env"] == {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    assert seen["hub_offline"] is True  # set before huggingface_hub read it


def test_import_leaves_hub_on_when_user_opts_in(imported):
    seen = imported["opt_in"]
    assert seen["env"]["HF_HUB_OFFLINE"] != "1"
    assert seen["hub_offline"] is False


# --- the same rules in-process, without the import cost --------------------------------------


@pytest.fixture
def clean_hub_env(monkeypatch):
    for var in HUB_VARS:
        monkeypatch.delenv(var, raising=False)  # recorded: whatever configure sets is undone
    return monkeypatch


def test_configure_defaults_to_offline(clean_hub_env):
    configure_offline_defaults()
    assert [os.environ[v] for v in HUB_VARS[:3]] == ["1", "1", "1"]
    assert not hub_allowed()


def test_configure_opt_in(clean_hub_env):
    clean_hub_env.setenv("INVERT_ALLOW_HUB", "1")
    configure_offline_defaults()
    assert [os.environ[v] for v in HUB_VARS[:3]] == ["0", "0", "0"]
    assert hub_allowed()


def test_configure_keeps_an_explicit_hub_on(clean_hub_env):
    clean_hub_env.setenv("HF_HUB_OFFLINE", "0")
    configure_offline_defaults()
    assert [os.environ[v] for v in HUB_VARS[:3]] == ["0", "0", "0"]
    assert hub_allowed()


def test_configure_never_overrides_explicit_settings(clean_hub_env):
    clean_hub_env.setenv("INVERT_ALLOW_HUB", "1")
    clean_hub_env.setenv("HF_DATASETS_OFFLINE", "1")
    configure_offline_defaults()
    assert os.environ["HF_HUB_OFFLINE"] == "0" and os.environ["HF_DATASETS_OFFLINE"] == "1"


def test_require_hub_names_the_offline_alternative(clean_hub_env):
    configure_offline_defaults()
    with pytest.raises(HubUnavailableError, match="'org/model'.*'smollm2'.*INVERT_ALLOW_HUB=1"):
        require_hub("org/model", "causal LM", "smollm2")
    assert isinstance(HubUnavailableError("x"), OSError)
    clean_hub_env.setenv("HF_HUB_OFFLINE", "0")
    require_hub("org/model", "causal LM", "smollm2")  # hub on: no error
