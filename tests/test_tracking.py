"""Tracking: an offline W&B run lands under the run folder only; the null tracker does nothing."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from invert.errors import EmptyInputError, UnknownNameError
from invert.reporting.plots import plot_learning_curve, plot_metric_bars
from invert.reporting.tracking import Tracker, WandbTracker, build_tracker, save_json

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_WANDB_VARS = ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR")


def _wandb_records(path: Path) -> list:
    """Parses a ``run-*.wandb`` transaction log (LevelDB log format, 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, pending, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST chunk
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def _offline_summary(run_folder: Path, records: list) -> dict:
    """The run's final summary: files/wandb-summary.json, else replayed from the log.

    wandb-core (0.31) writes no wandb-summary.json for offline runs; it only lands on sync.
    """
    summary_file = run_folder / "files" / "wandb-summary.json"
    if summary_file.is_file():
        return json.loads(summary_file.read_text())
    summary: dict = {}
    for record in records:
        if record.WhichOneof("record_type") != "summary":
            continue
        for item in record.summary.update:
            keys = list(item.nested_key) or [item.key]
            node = summary
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = json.loads(item.value_json)
    return summary


@pytest.fixture
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in (*_WANDB_VARS, "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        # Recorded by monkeypatch, so the values configure_wandb_dirs sets are undone too.
        monkeypatch.delenv(var, raising=False)
    return home


def _write_png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (8, 8), color=(200, 30, 30)).save(path)
    return path


def test_wandb_offline_run_stays_in_run_dir(tmp_path: Path, fake_home: Path) -> None:
    run_dir = tmp_path / "run"
    image = _write_png(tmp_path / "curve.png")
    model_dir = tmp_path / "ckpt"
    model_dir.mkdir()
    (model_dir / "weights.bin").write_bytes(b"0" * 16)
    results = save_json(tmp_path / "results.json", {"bleu": 1.5})

    tracker = WandbTracker("invert-test", run_dir, config={"lr": 1e-3, "epochs": 2})
    assert tracker.active and tracker.run_dir == run_dir
    for step, loss in enumerate([1.0, 0.5, 0.25]):
        tracker.log({"loss": loss, "lr": 1e-3}, step=step)
    tracker.log_table(
        "preds",
        ["target", "prediction", "bleu"],
        [{"target": "a b", "prediction": "a c", "bleu": 0.0}, ["x", "x", 100.0]],
        step=3,
    )
    tracker.log_image("curve", image, step=3)
    tracker.log_artifact(model_dir, "inverter:model", "model")  # skipped: log_model=False
    tracker.log_artifact(results, "results", "eval")
    tracker.summary({"final_bleu": 12.5})
    tracker.finish()
    tracker.finish()  # idempotent
    assert not tracker.active

    folders = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(folders) == 1
    (log_file,) = folders[0].glob("run-*.wandb")
    records = _wandb_records(log_file)
    summary = _offline_summary(folders[0], records)
    # An empty log here means finish() returned before wandb-core flushed it.
    assert "loss" in summary, (log_file.stat().st_size, summary)
    assert summary["loss"] == 0.25
    assert summary["final_bleu"] == 12.5
    assert summary["preds"]["_type"] == "table-file"
    assert summary["curve"]["_type"] == "image-file"

    history = [r.history for r in records if r.WhichOneof("record_type") == "history"]
    losses = [json.loads(i.value_json) for h in history for i in h.item if i.nested_key == ["loss"]]
    assert losses == [1.0, 0.5, 0.25]
    (table_file,) = (folders[0] / "files" / "media" / "table").glob("preds_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"] == ["target", "prediction", "bleu"]
    assert table["data"] == [["a b", "a c", 0.0], ["x", "x", 100.0]]
    artifacts = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"]
    assert [(a.name, a.type) for a in artifacts if a.type != "run_table"] == [("results", "eval")]

    assert list(fake_home.rglob("*")) == []
    assert os.environ["WANDB_DIR"] == str(run_dir)  # configure_wandb_dirs ran


def test_second_run_in_same_process(tmp_path: Path, fake_home: Path) -> None:
    # finish() tears the wandb service down; the next tracker must start a fresh one.
    for name in ("first", "second"):
        with build_tracker("wandb", tmp_path / name, {"name": name}, project="p") as tracker:
            tracker.log({"loss": 1.0}, step=0)
        (log_file,) = (tmp_path / name / "wandb").glob("offline-run-*/run-*.wandb")
        assert _offline_summary(log_file.parent, _wandb_records(log_file))["loss"] == 1.0
    assert list(fake_home.rglob("*")) == []


def test_build_tracker_kinds(tmp_path: Path) -> None:
    tracker = build_tracker("none", tmp_path / "run", {"a": 1})
    assert type(tracker) is Tracker and not tracker.active
    with pytest.raises(UnknownNameError, match="wandb"):
        build_tracker("tensorboard", tmp_path / "run", {})


def test_null_and_non_main_trackers_touch_nothing(tmp_path: Path) -> None:
    # A fresh interpreter, so "wandb not imported" is not masked by other tests.
    code = f"""
import os, sys
from invert.reporting.tracking import Tracker, WandbTracker, build_tracker
run = {str(tmp_path / "run")!r}
trackers = [
    build_tracker("none", run, {{}}),
    build_tracker("wandb", run, {{}}, is_main_process=False),
    WandbTracker("p", run, {{}}, is_main_process=False),
    WandbTracker("p", run, {{}}, enabled=False),
]
for t in trackers:
    with t:
        t.log({{"loss": 1.0}}, step=0)
        t.log_table("t", ["a"], [[1]])
        t.log_image("i", "missing.png")
        t.log_artifact("missing", "m", "model")
        t.summary({{"x": 1}})
assert "wandb" not in sys.modules, "wandb was imported"
assert "WANDB_DIR" not in os.environ
assert not os.path.exists(run)
"""
    env = {k: v for k, v in os.environ.items() if k not in _WANDB_VARS}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_save_json(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = save_json(
        tmp_path / "out" / "results.json",
        {"z": 1, "a": torch.tensor([0.5, 1.5]), "nan": float("nan"), "p": tmp_path},
    )
    text = path.read_text()
    assert text.startswith('{\n  "z": 1,')  # indent 2, insertion order kept
    assert json.loads(text) == {"z": 1, "a": [0.5, 1.5], "nan": None, "p": str(tmp_path)}


def test_plots_write_pngs(tmp_path: Path) -> None:
    history = [{"step": s, "loss": 2.0 / (s + 1), "bleu": 5.0 * s} for s in range(5)]
    history.append({"step": 5, "lr": 0.1})  # entries without the key are skipped
    curve = plot_learning_curve(history, tmp_path / "plots" / "curve.png", keys=("loss", "bleu"))
    bars = plot_metric_bars(
        {"inverter": {"bleu": 30.0, "cosine": 0.9}, "nearest": {"bleu": 12.0}},
        ["bleu", "cosine"],
        tmp_path / "bars.png",
    )
    for path in (curve, bars):
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(EmptyInputError):
        plot_learning_curve([{"step": 0, "lr": 0.1}], tmp_path / "none.png")
    with pytest.raises(EmptyInputError):
        plot_metric_bars({}, ["bleu"], tmp_path / "none.png")
