"""The `invert` console script: help, unknown subcommands, and a tiny run typed as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from invert import cli

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_every_subcommand(capsys) -> None:
    for argv in (["--help"], []):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: invert <subcommand>")
        for name in ("train", "evaluate", "table", "correct", "capacity", "memorization-audit",
                     "privacy-audit", "inverter-membership", "bench", "build-pii-store"):  # fmt: skip
            assert f"  {name} " in out


def test_every_subcommand_names_an_existing_script() -> None:
    for script, description in cli.SUBCOMMANDS.values():
        assert (cli.experiments_dir() / script).is_file() and description


def test_unknown_subcommand_exits_2_with_the_known_names(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["trian", "experiment=tiny"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'trian'" in err
    for name in cli.SUBCOMMANDS:
        assert name in err


def test_missing_experiments_folder_names_where_it_looked(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setattr(cli.invert, "__file__", str(tmp_path / "site-packages/invert/__init__.py"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train"])
    assert exit_info.value.code == 2
    assert str(tmp_path / "site-packages" / "experiments") in capsys.readouterr().err


@pytest.mark.slow
def test_invert_train_runs_the_tiny_experiment(tmp_path) -> None:
    script = Path(sys.executable).parent / "invert"
    assert script.is_file(), "run `pip install -e .` to create the invert console script"
    run_dir = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
           "INVERT_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}  # fmt: skip
    proc = subprocess.run(
        [str(script), "train", "experiment=tiny", "logger=none", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["train"]["steps"] == 20 and "inverter" in results["metrics"]


@pytest.mark.slow
def test_a_multirun_sweep_runs_each_job_in_its_own_folder(tmp_path) -> None:
    # The default sweep folder is what users get from `-m`; resolving it once failed before any
    # job ran, so the sweep folder is left to the packaged Hydra config here.
    script = Path(sys.executable).parent / "invert"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
           "INVERT_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}  # fmt: skip
    proc = subprocess.run(
        [str(script), "train", "-m", "experiment=tiny", "logger=none", "train.max_steps=4,6"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    (sweep,) = (tmp_path / "multirun" / "train_inverter").iterdir()
    steps = [json.loads((sweep / job / "results.json").read_text())["train"]["steps"]
             for job in ("0", "1")]  # fmt: skip
    assert steps == [4, 6]
