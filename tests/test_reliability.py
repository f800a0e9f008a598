"""The reliability spec: bad inputs named, runs that cannot mix, files that cannot run code.

Each test is a row of ``shared/reliability-cases.md`` (its number in the test's docstring): an
input a user gave, and what they must get.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TEXTS, fake_embeddings, make_trainer, tiny_inverter

import invert
from invert.data.corpora import CorpusFileError, load_raw_corpus
from invert.embedders import build_embedder
from invert.errors import (
    CheckpointError,
    InvalidEmbeddingError,
    InvertError,
    RunFolderInUseError,
)
from invert.models.loading import load_inverter
from invert.stores import StoreBatch, StoreError, open_store


class _RunsCode:
    """Unpickling this creates ``marker``: proof that a file ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.fixture(scope="module")
def saved_inverter(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inverter") / "inverter"
    tiny_inverter("prefix_lm").save_pretrained(path)
    return path


# --- the API -------------------------------------------------------------------------------


def test_an_empty_list_says_there_are_no_embeddings(saved_inverter):
    """1.7"""
    with pytest.raises(InvalidEmbeddingError, match="got no embeddings"):
        invert.invert_embeddings([], load_inverter(saved_inverter))


@pytest.mark.parametrize("argument", ["batch_size", "num_beams", "num_candidates", "max_new_tokens"])
def test_a_count_of_zero_is_named(saved_inverter, argument):
    """1.13, 1.14, 1.15: zero batch size, beams or tokens is an argument error, not a crash."""
    inverter = load_inverter(saved_inverter)
    with pytest.raises(InvertError, match=f"{argument} must be a whole number >= 1, got 0"):
        invert.invert_embeddings(fake_embeddings(2), inverter, **{argument: 0})
    if argument != "num_candidates":
        with pytest.raises(InvertError, match=f"{argument} must be"):
            inverter.generate_texts(fake_embeddings(2), **{argument: 0})


def test_a_folder_path_as_the_inverter_says_to_load_it(saved_inverter):
    """1.16"""
    with pytest.raises(InvertError, match="is a path.*invert.load_inverter"):
        invert.invert_embeddings(fake_embeddings(2), str(saved_inverter))


def test_an_embedder_as_the_inverter_says_the_order():
    """1.17"""
    embedder = build_embedder("minilm")
    with pytest.raises(InvertError, match=r"is an embedder.*invert_embeddings\(embeddings, inverter, embedder\)"):
        invert.invert_embeddings(embedder.encode(["a text"]), embedder)


# --- corpus files --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".jsonl"])
def test_a_binary_corpus_file_is_named_as_not_utf8(tmp_path, suffix):
    """1.25, 1.26"""
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(b"ok\n\xff\xfe\x00\x81 binary")
    with pytest.raises(CorpusFileError, match=rf"garbage\{suffix} is not UTF-8 text \(byte 3"):
        load_raw_corpus(f"file:{path}")


def test_a_broken_jsonl_line_is_named_by_number(tmp_path):
    """1.28"""
    path = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"text": f"sentence number {i} here"}) for i in range(60)]
    path.write_text("\n".join(lines) + '\n{"text": "cut off')
    with pytest.raises(CorpusFileError, match="corpus.jsonl: line 61 is not JSON"):
        load_raw_corpus(f"file:{path}")


# --- configs and checkpoints ----------------------------------------------------------------


def test_hf_pooling_without_a_model_says_which_key_to_set():
    """2.10"""
    spec = {"_target_": "invert.embedders.HFPoolingEmbedder", "model": "???", "pooling": "mean"}
    with pytest.raises(InvertError, match=r"set embedder.model=\.\.\. \(HFPoolingEmbedder needs it\)"):
        build_embedder(spec)


def test_a_missing_inverter_path_says_it_is_required():
    """2.11"""
    with pytest.raises(CheckpointError, match="inverter_path is not set"):
        load_inverter("???")


@pytest.mark.parametrize(("config", "message"), [
    ([], "holds a list, not a model config"),
    ({"model_type": "invert_prefix_lm", "max_text_tokens": -5, "embedder_dim": 16},
     "max_text_tokens must be a whole number >= 1, got -5"),
])  # fmt: skip
def test_a_damaged_config_json_is_refused_at_load(tmp_path, saved_inverter, config, message):
    """3.5, 3.9"""
    folder = tmp_path / "inverter"
    folder.mkdir()
    for file in saved_inverter.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    original = json.loads((saved_inverter / "config.json").read_text())
    if isinstance(config, dict):
        config = {**original, **config, "model_type": original["model_type"]}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message):
        load_inverter(folder)


def _checkpointed(tmp_path: Path, **config) -> Path:
    """A tiny run with checkpoints at steps 2 and 4 (both kept)."""
    model = tiny_inverter("prefix_lm")
    make_trainer(model, tmp_path, max_steps=4, save_every=2, keep_checkpoints=2, lr=1e-3,
                 **config).train()  # fmt: skip
    return tmp_path / "checkpoints"


def _resume(tmp_path: Path, where: str = "latest", **config):
    model = tiny_inverter("prefix_lm")
    trainer = make_trainer(model, tmp_path, max_steps=4, save_every=2, keep_checkpoints=2,
                           lr=1e-3, resume_from=where, **config)  # fmt: skip
    return trainer


def test_a_crafted_scheduler_pickle_in_a_checkpoint_never_runs(tmp_path):
    """3.14: the scheduler is JSON in trainer_state.json; a pickle in its place is refused."""
    step = _checkpointed(tmp_path) / "step-0000004"
    assert not list(step.glob("*custom_checkpoint*"))  # nothing pickled is written
    marker = tmp_path / "PICKLE_RAN"
    torch.save(_RunsCode(marker), step / "custom_checkpoint_0.pkl")
    with pytest.raises(CheckpointError, match="pickled objects invert never writes"):
        _resume(tmp_path).load_checkpoint("latest")
    assert not marker.exists()
    (step / "custom_checkpoint_0.pkl").unlink()
    trainer = _resume(tmp_path)
    trainer.load_checkpoint("latest")
    assert trainer.step == 4


def test_a_crafted_rng_pickle_is_refused_without_running(tmp_path):
    """3.14: the RNG state is loaded weights-only, so a payload there is an error, not code."""
    step = _checkpointed(tmp_path) / "step-0000004"
    marker = tmp_path / "PICKLE_RAN"
    for rng in step.glob("random_states_*.pkl"):
        torch.save(_RunsCode(marker), rng)
    with pytest.raises(CheckpointError, match="step-0000004 is damaged: random_states_0.pkl"):
        _resume(tmp_path).load_checkpoint("latest")
    assert not marker.exists()


def test_a_crafted_qdrant_point_is_refused_without_running(tmp_path):
    """3.15"""
    qdrant = pytest.importorskip("qdrant_client")
    import sqlite3

    from qdrant_client.http import models

    folder = tmp_path / "qdrant"
    client = qdrant.QdrantClient(path=str(folder))
    client.create_collection("documents", vectors_config=models.VectorParams(
        size=4, distance=models.Distance.DOT))  # fmt: skip
    client.upsert("documents", [models.PointStruct(id=i, vector=[float(i), 1.0, 0.0, 0.0],
                                                   payload={"document": f"text {i}"})
                                for i in range(3)])  # fmt: skip
    client.close()
    spec = {"type": "qdrant", "path": str(folder), "collection": "documents"}
    with open_store(spec) as store:  # the honest store opens and reads
        assert store.count == 3
    marker = tmp_path / "PICKLE_RAN"
    (db,) = folder.glob("collection/*/storage.sqlite")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE points SET point = ? WHERE rowid = 1",
                     (pickle.dumps(_RunsCode(marker)),))  # fmt: skip
    with pytest.raises(StoreError, match="not data; refusing to open it"):
        open_store(spec)
    assert not marker.exists()


# --- killed runs and folders that hold another run ----------------------------------------


def test_latest_skips_a_torn_checkpoint_and_says_so(tmp_path, caplog):
    """4.5: a kill mid-write leaves step-N without its completion marker."""
    root = _checkpointed(tmp_path)
    (root / "step-0000004" / "complete.json").unlink()
    trainer = _resume(tmp_path)
    trainer.load_checkpoint("latest")
    assert trainer.step == 2
    assert "skipping incomplete checkpoints ['step-0000004']" in caplog.text


@pytest.mark.parametrize("file", ["trainer_state.json", "model.safetensors"])
def test_a_half_written_checkpoint_file_names_the_checkpoint(tmp_path, file):
    """4.7, 4.8"""
    step = _checkpointed(tmp_path) / "step-0000004"
    damaged = step / file
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"step-0000004.* is damaged"):
        _resume(tmp_path, where=str(step)).load_checkpoint(str(step))


def test_a_new_run_refuses_a_folder_holding_another_runs_checkpoints(tmp_path):
    """8.2: nothing of the first run is overwritten or pruned."""
    root = _checkpointed(tmp_path)
    before = sorted(p.name for p in root.iterdir())
    model = tiny_inverter("prefix_lm", seed=1)
    second = make_trainer(model, tmp_path, max_steps=2, save_every=1, seed=1, lr=1e-3)
    with pytest.raises(RunFolderInUseError, match="holds another run's checkpoints.*resume_from=latest"):
        second.train()
    assert sorted(p.name for p in root.iterdir()) == before
    again = make_trainer(tiny_inverter("prefix_lm"), tmp_path, max_steps=2, save_every=2,
                         lr=1e-3, overwrite=True)  # fmt: skip
    again.train()
    assert sorted(p.name for p in root.iterdir()) == ["step-0000002"]


def test_resuming_another_runs_checkpoint_is_refused(tmp_path):
    """8.3: same folder, other seed and length: the checkpoint is not this run's."""
    _checkpointed(tmp_path)
    with pytest.raises(CheckpointError, match="other settings.*seed: checkpoint 0, this run 1"):
        _resume(tmp_path, seed=1).load_checkpoint("latest")


def test_a_training_run_refuses_the_folder_of_a_finished_one(tmp_path):
    """8.2 at the run level: results.json of a finished run is never overwritten."""
    from invert.reporting.run_context import open_run

    (tmp_path / "results.json").write_text("{}")
    cfg = {"paths": {"output_dir": str(tmp_path)}, "seed": 0, "logger": {"kind": "none"},
           "train": {"resume_from": None, "overwrite": False}}  # fmt: skip
    with pytest.raises(RunFolderInUseError, match="holds a finished run"):
        open_run(cfg)
    open_run({**cfg, "train": {"resume_from": "latest"}}).tracker.finish()


def test_two_runs_started_in_the_same_second_get_two_folders():
    """8.4: the run folder names carry microseconds."""
    conf = Path(__file__).resolve().parents[1] / "conf" / "hydra" / "default.yaml"
    text = conf.read_text()
    assert "%H-%M-%S-%f" in text.split("run:")[1].split("\n")[1]


# --- stores --------------------------------------------------------------------------------


def test_a_faiss_idmap_index_reads_with_its_own_ids(tmp_path):
    """7.7: an IndexIDMap used to abort the process inside reconstruct."""
    faiss = pytest.importorskip("faiss")
    vectors = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    index = faiss.IndexIDMap(faiss.IndexFlatIP(8))
    index.add_with_ids(vectors, np.array([10, 11, 12, 13, 14], dtype=np.int64))
    faiss.write_index(index, str(tmp_path / "ids.faiss"))
    with open_store({"type": "faiss", "path": str(tmp_path / "ids.faiss")}) as store:
        rows = store.sample(5, seed=0, batch_size=2)
    assert sorted(rows.ids) == ["10", "11", "12", "13", "14"]
    by_id = dict(zip(rows.ids, rows.vectors, strict=True))
    assert np.allclose(by_id["12"], vectors[2])


def test_random_bytes_are_not_a_faiss_index(tmp_path):
    """7.9"""
    pytest.importorskip("faiss")
    (tmp_path / "x.faiss").write_bytes(np.random.default_rng(0).bytes(256))
    with pytest.raises(StoreError, match="x.faiss is not a FAISS index"):
        open_store({"type": "faiss", "path": str(tmp_path / "x.faiss")})


def test_an_npy_of_objects_or_random_bytes_is_refused_without_unpickling(tmp_path):
    """7.11, 7.12"""
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(StoreError, match="holds Python objects, not numbers"):
        open_store({"type": "npy", "path": str(tmp_path / "objects.npy")})
    (tmp_path / "random.npy").write_bytes(np.random.default_rng(0).bytes(128))
    with pytest.raises(StoreError, match="is not an .npy file"):
        open_store({"type": "npy", "path": str(tmp_path / "random.npy")})


def test_a_nan_vector_is_skipped_and_named_by_its_store_id():
    """7.14: the audit goes on without it, and the report says which row was left out."""
    from invert.privacy.victims import drop_invalid_rows

    vectors = np.ones((4, 3), dtype=np.float32)
    vectors[2, 1] = np.nan
    notes: list[str] = []
    kept = drop_invalid_rows(StoreBatch(["r0", "r1", "r7", "r9"], vectors, list("abcd")), notes)
    assert kept.ids == ["r0", "r1", "r9"] and kept.documents == ["a", "b", "d"]
    assert notes == ["skipped 1 stored vector(s) holding NaN or inf: ids ['r7']"]


def test_ragged_parquet_vectors_name_the_rows(tmp_path):
    """7.16"""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [[0.1, 0.2, 0.3]] * 5 + [[0.1, 0.2]] + [[0.5, 0.5, 0.5]]
    pq.write_table(pa.table({"embedding": rows, "text": [f"t{i}" for i in range(7)]}),
                   tmp_path / "v.parquet")  # fmt: skip
    with (
        open_store({"type": "parquet", "path": str(tmp_path / "v.parquet")}) as store,
        pytest.raises(StoreError, match=r"rows \[5\] hold vectors of another length"),
    ):
        store.sample(7, seed=0, batch_size=4)


# --- the embedding cache -------------------------------------------------------------------


def _minilm_copy(tmp_path: Path, name: str) -> Path:
    import shutil

    from invert.embedders.sentence_transformer import packaged_minilm_path

    target = tmp_path / name / "model"
    shutil.copytree(packaged_minilm_path(), target)
    return target


def test_cache_keys_on_pooling(tmp_path):
    """8.8: mean then cls pooling of one folder: the second misses the cache."""
    from invert.data.pairs import embed_split
    from invert.embedders import HFPoolingEmbedder
    from invert.embedders.sentence_transformer import packaged_minilm_path

    folder = str(packaged_minilm_path())
    mean = embed_split(TEXTS, HFPoolingEmbedder(folder, pooling="mean"), "c", "train", 16)
    cls_embedder = HFPoolingEmbedder(folder, pooling="cls")
    cls = embed_split(TEXTS, cls_embedder, "c", "train", 16)
    assert not cls.from_cache
    assert torch.allclose(cls.embeddings, cls_embedder.encode(TEXTS))
    assert not torch.allclose(cls.embeddings, mean.embeddings)


def test_cache_keys_on_the_weights_not_the_folder_name(tmp_path):
    """8.9: two folders named ``model`` with different weights get their own vectors."""
    from safetensors.torch import load_file, save_file

    from invert.data.pairs import embed_split
    from invert.embedders import SentenceTransformerEmbedder

    first, second = _minilm_copy(tmp_path, "runA"), _minilm_copy(tmp_path, "runB")
    weights = second / "model.safetensors"
    state = load_file(weights)
    key = next(k for k in state if k.endswith("word_embeddings.weight"))
    state[key] = state[key] * 0.5
    save_file(state, weights, metadata={"format": "pt"})
    a = embed_split(TEXTS, SentenceTransformerEmbedder(str(first)), "c", "train", 16)
    embedder_b = SentenceTransformerEmbedder(str(second))
    b = embed_split(TEXTS, embedder_b, "c", "train", 16)
    assert embedder_b.name == "model" and not b.from_cache
    assert torch.allclose(b.embeddings, embedder_b.encode(TEXTS))
    assert not torch.allclose(a.embeddings, b.embeddings)


def test_cache_keys_on_the_input_length():
    """8.10"""
    from invert.data.pairs import embed_split
    from invert.embedders import SentenceTransformerEmbedder

    embed_split(TEXTS, SentenceTransformerEmbedder("minilm"), "c", "train", 16)
    short = SentenceTransformerEmbedder("minilm", max_seq_length=4)
    cut = embed_split(TEXTS, short, "c", "train", 16)
    assert not cut.from_cache
    assert torch.allclose(cut.embeddings, short.encode(TEXTS))


def test_cache_keys_on_normalization_and_a_stored_vectors_file(tmp_path):
    """The rest of what determines vectors: normalization, and a vectors file's content."""
    from invert.data.pairs import embed_split
    from invert.embedders import PrecomputedEmbedder, SentenceTransformerEmbedder

    embed_split(TEXTS, SentenceTransformerEmbedder("minilm"), "c", "train", 16)
    normalized = embed_split(TEXTS, SentenceTransformerEmbedder("minilm", normalize=True),
                             "c", "train", 16)  # fmt: skip
    assert not normalized.from_cache
    for name, scale in (("a", 1.0), ("b", 2.0)):
        np.save(tmp_path / f"{name}.npy", scale * fake_embeddings(len(TEXTS)).numpy())
    (tmp_path / "texts.json").write_text(json.dumps(TEXTS))
    a = PrecomputedEmbedder(tmp_path / "a.npy", name="v", texts_path=tmp_path / "texts.json")
    b = PrecomputedEmbedder(tmp_path / "b.npy", name="v", texts_path=tmp_path / "texts.json")
    embed_split(TEXTS, a, "c", "train", 16)
    second = embed_split(TEXTS, b, "c", "train", 16)
    assert not second.from_cache and torch.allclose(second.embeddings, b.vectors)


def test_the_cache_keeps_hashes_not_private_text():
    """The cache outlives the run folder: its sidecar must not hold the corpus."""
    from invert.data.pairs import embed_split
    from invert.embedders import SentenceTransformerEmbedder

    secret = ["Patient Jane Roe, born May 3, 1961, phone 555-0199."]
    split = embed_split(secret, SentenceTransformerEmbedder("minilm"), "private", "train", 32)
    sidecar = split.path.with_suffix(".json").read_text()
    assert "Jane Roe" not in sidecar and "texts_sha256" in sidecar
    assert b"Jane Roe" not in split.path.read_bytes()


# --- same seed, same numbers ---------------------------------------------------------------


def _weights_sha(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def _without_timing(value):
    """Results minus wall-clock fields (seconds, rates), which no seed can fix."""
    timing = ("seconds", "per_second", "seconds_per_100", "elapsed", "_s")
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items()
                if not any(t in str(k) for t in timing) and k not in ("inverter_path", "plot")}  # fmt: skip
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def test_a_run_stopped_before_its_first_logged_step_still_writes_results(tmp_path):
    """A run whose time limit ends it at step 1 has no learning curve, and no crash."""
    from test_inversion_run import tiny_config

    from invert.inversion.runs.train import run_inversion_experiment

    cfg = tiny_config(tmp_path, "experiment=tiny", "logger=none", "train.max_minutes=1e-6",
                      "train.log_every=50", "train.save_every=0", "eval.search=null")  # fmt: skip
    summary = run_inversion_experiment(cfg)
    assert summary["train"]["stopped_early"] and summary["train"]["steps"] == 1
    assert (tmp_path / "results.json").is_file() and not (tmp_path / "learning_curve.png").exists()


def test_two_tiny_trainings_with_one_seed_are_identical(tmp_path):
    """5.2, 4.2: the run seeds the model's init itself; the test seeds nothing."""
    from test_inversion_run import tiny_config

    from invert.inversion.runs.train import run_inversion_experiment

    summaries = []
    for name in ("a", "b"):
        cfg = tiny_config(tmp_path / name, "experiment=tiny", "logger=none", "train.max_steps=6",
                          "train.save_every=0", "eval.num_candidates=1", "eval.search=null")  # fmt: skip
        torch.manual_seed(1 if name == "a" else 2)  # the global RNG must not matter
        summaries.append(run_inversion_experiment(cfg))
    assert _weights_sha(tmp_path / "a" / "inverter") == _weights_sha(tmp_path / "b" / "inverter")
    a, b = (json.loads((tmp_path / n / "results.json").read_text()) for n in ("a", "b"))
    assert _without_timing(a) == _without_timing(b)


def test_two_tiny_memorization_audits_with_one_seed_are_identical(tmp_path):
    from test_memorization_audit import _config

    from invert.memorization import run_memorization_audit

    results = []
    for name in ("a", "b"):
        torch.manual_seed(1 if name == "a" else 2)
        results.append(_without_timing(run_memorization_audit(_config(tmp_path / name))))
    for r in results:
        r.pop("config")
        r.pop("files")
    assert results[0] == results[1]


@pytest.mark.slow
def test_kill_9_and_resume_equals_the_uninterrupted_run(tmp_path):
    """4.1/4.2 through the command a user types: nothing is seeded here."""
    import os
    import subprocess
    import sys
    import time

    script = Path(__file__).resolve().parents[1] / "experiments" / "train_inverter.py"
    common = [sys.executable, str(script), "experiment=tiny", "logger=none", "train.max_steps=40",
              "train.save_every=5", "train.eval_every=0", "eval.search=null",
              "eval.num_candidates=1"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    run = lambda *extra: subprocess.run([*common, *extra], env=env, capture_output=True,  # noqa: E731
                                        text=True, timeout=600)  # fmt: skip
    whole = run(f"hydra.run.dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*common, f"hydra.run.dir={killed}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 600  # a guard against a hung run, not a speed check
    while not (killed / "checkpoints" / "step-0000010" / "complete.json").exists():
        assert proc.poll() is None, "the run ended before its step-10 checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.kill()  # SIGKILL: no clean-up of any kind
    proc.wait()
    assert not (killed / "results.json").exists()
    resumed = run(f"hydra.run.dir={killed}", "train.resume_from=latest")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _weights_sha(killed / "inverter") == _weights_sha(tmp_path / "whole" / "inverter")


def _short(text: str) -> bytes:
    """Pickle's SHORT_BINUNICODE opcode for ``text``."""
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


def test_an_attribute_walking_pickle_is_refused_without_running(tmp_path):
    """A dotted global (Class.__init__.__builtins__.get) reaches any callable: refused."""
    from invert.stores.qdrant import POINT_MODULES
    from invert.stores.safe_pickle import UnsafePickleError, check_pickles

    marker = tmp_path / "RAN"
    # STACK_GLOBAL(module, "PointStruct.__init__.__builtins__.get")("open")(marker, "w")
    walk = (b"\x80\x04" + _short("qdrant_client.http.models")
            + _short("PointStruct.__init__.__builtins__.get") + b"\x93"
            + _short("open") + b"\x85R" + _short(str(marker)) + _short("w") + b"\x86R.")  # fmt: skip
    with pytest.raises(UnsafePickleError, match="not data"):
        check_pickles([walk], POINT_MODULES)
    assert not marker.exists()
    # A public name of an allowed module that is a function, not a data class.
    function = b"\x80\x04" + _short("qdrant_client.http.models") + _short("Field") + b"\x93."
    with pytest.raises(UnsafePickleError, match="not a data class"):
        check_pickles([function], POINT_MODULES)


def test_a_crafted_point_in_a_nested_qdrant_collection_is_refused(tmp_path):
    """Collections in sub-folders are checked too: qdrant-client opens them all."""
    pytest.importorskip("qdrant_client")
    import sqlite3

    from invert.stores.qdrant import check_local_points

    db = tmp_path / "collection" / "a" / "b" / "storage.sqlite"
    db.parent.mkdir(parents=True)
    marker = tmp_path / "RAN"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE points (id TEXT PRIMARY KEY, point BLOB)")
        conn.execute("INSERT INTO points VALUES (?, ?)", ("x", pickle.dumps(_RunsCode(marker))))
    with pytest.raises(StoreError, match="not data"):
        check_local_points(tmp_path)
    assert not marker.exists()


def test_cache_keys_on_which_column_of_a_vectors_file(tmp_path):
    """One parquet, two vector columns: each gets its own vectors."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from invert.data.pairs import embed_split
    from invert.embedders import PrecomputedEmbedder

    a, b = fake_embeddings(len(TEXTS), seed=1), fake_embeddings(len(TEXTS), seed=2)
    pq.write_table(pa.table({"text": TEXTS, "emb_a": a.tolist(), "emb_b": b.tolist()}),
                   tmp_path / "v.parquet")  # fmt: skip
    embed_split(TEXTS, PrecomputedEmbedder(tmp_path / "v.parquet", name="v", vector_column="emb_a"),
                "c", "train", 16)  # fmt: skip
    second = embed_split(TEXTS, PrecomputedEmbedder(tmp_path / "v.parquet", name="v",
                                                    vector_column="emb_b"), "c", "train", 16)  # fmt: skip
    assert not second.from_cache and torch.allclose(second.embeddings, b)


def test_resuming_an_earlier_checkpoint_drops_the_abandoned_later_ones(tmp_path):
    """Resumed from step 2 while step 4 exists: saving step 3 removes step 4, keeps step 3."""
    root = _checkpointed(tmp_path)
    model = tiny_inverter("prefix_lm")
    trainer = make_trainer(model, tmp_path, max_steps=4, save_every=3, keep_checkpoints=1,
                           lr=1e-3, resume_from=str(root / "step-0000002"))  # fmt: skip
    trainer.train(stop_after=3)
    assert sorted(p.name for p in root.iterdir()) == ["step-0000003"]


def test_an_explicit_checkpoint_without_its_completion_marker_is_refused(tmp_path):
    step = _checkpointed(tmp_path) / "step-0000004"
    (step / "complete.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        _resume(tmp_path, where=str(step)).load_checkpoint(str(step))


def test_a_resumed_run_keeps_the_time_it_already_spent(tmp_path):
    """max_minutes is one budget across a kill: the resumed run does not start it over."""
    settings = dict(max_steps=8, save_every=2, lr=1e-3, max_minutes=60.0)
    make_trainer(tiny_inverter("prefix_lm"), tmp_path, **settings).train(stop_after=2)
    state_file = tmp_path / "checkpoints" / "step-0000002" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["time_progress"] = 1.0  # as if the whole hour was spent before the kill
    state_file.write_text(json.dumps(state))
    resumed = make_trainer(tiny_inverter("prefix_lm"), tmp_path, resume_from="latest", **settings)
    result = resumed.train()
    assert result.stopped_early and result.steps == 3  # one step, then the budget is out
