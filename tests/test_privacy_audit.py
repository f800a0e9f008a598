"""The privacy audit end to end on a real Chroma store: report, images, and no text to W&B."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from audit_helpers import HashEmbedder, build_chroma_store, tiny_trained_inverter
from PIL import Image

from invert.data.synthetic_pii import synthetic_pii_records
from invert.errors import DimensionMismatchError
from invert.privacy import run_privacy_audit

N_RECORDS, SEED = 40, 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit")
    embedder = HashEmbedder(dim=32)
    records = synthetic_pii_records(N_RECORDS, seed=SEED)
    store = build_chroma_store(tmp / "chroma", records, embedder)
    inverter = tiny_trained_inverter(embedder, [r["text"] for r in records], tmp / "train")
    return embedder, records, store, inverter


def _cfg(store, out: Path, logger=None, **audit):
    settings = {
        "sample_size": 8,
        "noise_levels": [0.0, 0.1, 1.0],
        "alignment_k": [4, 20],
        "defenses": ["noise", "int8", "binary", "orthogonal"],
        "max_new_tokens": 6,
        "retrieval": {"n": 40, "k": 10},
        "pii_records": {"source": "synthetic_pii", "n": N_RECORDS, "seed": SEED},
        **audit,
    }
    return {
        "store": store,
        "audit": settings,
        "seed": 0,
        "logger": logger or {"kind": "none"},
        "paths": {"output_dir": str(out)},
    }


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.images = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])


@pytest.fixture
def fake_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in (
        "WANDB_DIR",
        "WANDB_CACHE_DIR",
        "WANDB_CONFIG_DIR",
        "WANDB_DATA_DIR",
        "XDG_CONFIG_HOME",
        "XDG_CACHE_HOME",
        "XDG_DATA_HOME",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


def test_audit_writes_valid_report_and_no_text_to_wandb(setup, tmp_path, fake_home):
    embedder, records, store, inverter = setup
    out = tmp_path / "run"
    logger = {"kind": "wandb", "project": "audit-test", "mode": "offline"}
    result = run_privacy_audit(_cfg(store, out, logger), inverter=inverter, embedder=embedder)

    conditions = [r["condition"] for r in result["rows"]]
    assert conditions == [
        "none",
        "noise λ=0",
        "noise λ=0.1",
        "noise λ=1",
        "int8",
        "binary",
        "orthogonal",
        "orthogonal+ALGEN k=4",
        "orthogonal+ALGEN k=20",
    ]
    rows = {r["condition"]: r for r in result["rows"]}
    for row in rows.values():
        assert 0 <= row["token_f1"] <= 1 and -1 <= row["cosine"] <= 1
        assert set(row["pii"]) >= {"first_name", "last_name", "full_name", "date", "city", "phone"}
        assert row["pii"]["first_name"]["n"] == 8
        assert 0 <= row["recall@10"] <= 1
    assert rows["noise λ=0"]["recall@10"] == rows["none"]["recall@10"]
    assert rows["orthogonal"]["recall@10"] == pytest.approx(rows["none"]["recall@10"])
    assert rows["noise λ=1"]["recall@10"] < rows["none"]["recall@10"]

    saved = json.loads((out / "report.json").read_text())
    assert saved["store"]["count"] == N_RECORDS and saved["store"]["sampled"] == 8
    assert "examples" not in saved

    page = (out / "report.html").read_text()
    parser = _Collector()
    parser.feed(page)
    parser.close()
    assert {"html", "table", "img"} <= set(parser.tags) and len(parser.images) == 2
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        image.load()
        assert image.size[0] > 100
    texts = [r["text"] for r in records]
    assert not any(t in page for t in texts)  # show_examples is off

    run_files = [p for p in (out / "wandb").rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in run_files)
    blob = b"".join(p.read_bytes() for p in run_files)
    leaked = [t for t in texts if t.encode() in blob]
    assert not leaked and b"Patient " not in blob


def test_examples_only_when_asked(setup, tmp_path):
    embedder, records, store, inverter = setup
    cfg = _cfg(store, tmp_path, show_examples=True, defenses=["int8"], num_examples=3)
    result = run_privacy_audit(cfg, inverter=inverter, embedder=embedder)
    assert len(result["examples"]) == 3 and set(result["examples"][0]) == {"stored", "none", "int8"}
    page = (tmp_path / "report.html").read_text()
    assert "Examples" in page and result["examples"][0]["stored"][:20].replace("&", "&amp;") in page


def test_audit_refuses_wrong_dimension(setup, tmp_path):
    embedder, records, _, inverter = setup
    other = HashEmbedder(dim=24)
    store = build_chroma_store(tmp_path / "c24", records[:5], other)
    with pytest.raises(DimensionMismatchError, match=r"24-dim.*expects 32-dim"):
        run_privacy_audit(_cfg(store, tmp_path), inverter=inverter, embedder=embedder)


@pytest.mark.slow
def test_hydra_entry_point_on_a_parquet_store(tmp_path):
    """experiments/privacy_audit.py end to end: MiniLM store, saved (untrained) inverter."""
    import os
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq
    from helpers import TINY_LLAMA, tokenizer_path

    from invert.embedders import MINILM
    from invert.models import build_inverter

    texts = [r["text"] for r in synthetic_pii_records(10, seed=0)]
    # Random unit vectors keep the test fast: the audit needs MiniLM-sized rows, not MiniLM.
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(texts), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = tmp_path / "store.parquet"
    pq.write_table(pa.table({"text": texts, "embedding": list(vectors)}), store)
    inverter = build_inverter(
        "prefix_lm",
        MINILM,
        384,
        lm_config=TINY_LLAMA,
        tokenizer=tokenizer_path(),
        tuning="full",
        num_prefix_tokens=2,
        projection_hidden_dim=32,
        max_text_tokens=8,
    )
    inverter.save_pretrained(tmp_path / "inverter")
    root = Path(__file__).resolve().parents[1]
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        str(root / "experiments" / "privacy_audit.py"),
        "store=parquet",
        f"store.path={store}",
        f"inverter_path={tmp_path / 'inverter'}",
        "logger=none",
        f"hydra.run.dir={run_dir}",
        "audit.sample_size=4",
        "audit.defenses=[int8,orthogonal]",
        "audit.alignment_k=[4]",
        "audit.retrieval.n=20",
        "audit.max_new_tokens=4",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((run_dir / "report.json").read_text())
    assert [r["condition"] for r in report["rows"]] == [
        "none",
        "int8",
        "orthogonal",
        "orthogonal+ALGEN k=4",
    ]
    assert report["store"]["name"] == "parquet:store.parquet" and report["store"]["dim"] == 384
    assert (run_dir / "report.html").is_file()


def test_search_in_the_loop_only_raises_the_cosine_to_the_store(setup, tmp_path):
    embedder, _, store, inverter = setup
    kept = {"defenses": ["noise"], "noise_levels": [0.0]}
    plain = run_privacy_audit(
        _cfg(store, tmp_path / "plain", **kept), inverter=inverter, embedder=embedder
    )
    search = {"num_rounds": 3, "edits_per_round": 4, "gradient_edits": 0, "inverter_edits": 2}
    cfg = _cfg(store, tmp_path / "search", search=search, **kept)
    searched = run_privacy_audit(cfg, inverter=inverter, embedder=embedder)
    # The inverter's text seeds the search, which keeps an edit only if it scores closer.
    for before, after in zip(plain["rows"], searched["rows"], strict=True):
        assert after["condition"] == before["condition"]
        assert after["cosine"] > before["cosine"] + 0.05, (before, after)


def test_summary_names_the_noise_that_keeps_retrieval():
    from invert.privacy.store_audit import _noise_sweet_spot

    def row(defense, level, bleu, recall, full):
        pii = {"full_name": {"rate": full}}
        return {"defense": defense, "level": level, "bleu": bleu, "recall@10": recall, "pii": pii}

    rows = [
        row("none", None, 40.0, 1.0, 0.6),
        row("noise", 0.01, 36.0, 0.99, 0.5),
        row("noise", 0.05, 18.0, 0.96, 0.1),
        row("noise", 0.1, 5.0, 0.5, 0.0),
        row("int8", None, 40.0, 1.0, 0.6),
    ]
    line = _noise_sweet_spot(rows)
    assert "λ=0.05" in line and "BLEU falls 55% (40.0 → 18.0)" in line
    assert "from 60% to 10%" in line
    assert _noise_sweet_spot([rows[0], rows[3]]) is None  # no λ keeps retrieval


def test_two_audits_with_one_seed_give_the_same_report(setup, tmp_path):
    """Same store, inverter and seed: the same sample, defenses, leakage and utility."""
    import torch

    embedder, _, store, inverter = setup
    reports = []
    for name, noise in (("a", 1), ("b", 2)):
        torch.manual_seed(noise)  # the global RNG must not matter
        cfg = _cfg(store, tmp_path / name, defenses=["noise", "orthogonal"], noise_levels=[0.1])
        report = run_privacy_audit(cfg, inverter=inverter, embedder=embedder)
        reports.append({k: v for k, v in report.items() if k != "files"})
    assert json.dumps(reports[0], sort_keys=True, default=str) == json.dumps(
        reports[1], sort_keys=True, default=str
    )
