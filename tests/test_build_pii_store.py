"""The PII demo-store builder writes a real Chroma store the audit can read back."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from invert.data.synthetic_pii import synthetic_pii_records
from invert.stores import open_store

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "build_pii_store.py"


def test_build_pii_store_round_trip(tmp_path):
    spec = importlib.util.spec_from_file_location("build_pii_store", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    summary = module.main(["--out", str(tmp_path), "--n", "12", "--seed", "3"])
    assert summary["count"] == 12 and summary["dim"] == 384
    assert json.loads((tmp_path / "store.json").read_text())["faker_seed"] == 3
    with open_store({"type": "chroma", "path": summary["path"], "collection": "notes"}) as store:
        batch = store.sample(12, seed=0)
    # Stored documents are exactly the seed-3 records, so the audit can match PII ground truth.
    assert sorted(batch.documents) == sorted(r["text"] for r in synthetic_pii_records(12, 3))
    assert batch.vectors.shape == (12, 384)
