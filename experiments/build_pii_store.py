"""Fills a Chroma store with synthetic private notes (Faker), as a RAG deployment would hold them.

The victim side of a privacy-audit demo: N clinical-style notes and customer records (names,
birth dates, addresses, cities, phone numbers) embedded with the packaged all-MiniLM-L6-v2 and
stored with their text. Use a Faker seed the attacker's inverter was not trained on:

    python experiments/build_pii_store.py --out outputs/pii_store --n 5000 --seed 1
    python experiments/privacy_audit.py store=chroma store.path=outputs/pii_store/chroma \
        store.collection=notes inverter_path=<run>/inverter \
        'audit.pii_records={source: synthetic_pii, n: 5000, seed: 1}'
    python experiments/privacy_audit.py store=chroma store.path=outputs/pii_store/chroma \
        store.collection=notes audit.attacker=records \
        'audit.pii_records={source: synthetic_pii, n: 5000, seed: 1}'
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import invert  # noqa: F401  (sets offline hub defaults before anything loads)
from invert.data.synthetic_pii import synthetic_pii_records
from invert.embedders import build_embedder
from invert.stores.base import require_package

CHROMA_MAX_BATCH = 5000  # Chroma refuses larger add() calls


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="outputs/pii_store")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1, help="Faker seed of the victim records")
    parser.add_argument("--collection", default="notes")
    parser.add_argument("--embedder", default="minilm")
    args = parser.parse_args(argv)
    chromadb = require_package("chromadb", "chromadb")
    start = time.perf_counter()
    records = synthetic_pii_records(args.n, args.seed)
    texts = [r["text"] for r in records]
    embedder = build_embedder(args.embedder)
    vectors = embedder.encode(texts, show_progress=True).numpy()
    out = Path(args.out)
    client = chromadb.PersistentClient(path=str(out / "chroma"))
    collection = client.get_or_create_collection(args.collection)
    for i in range(0, len(texts), CHROMA_MAX_BATCH):
        j = i + CHROMA_MAX_BATCH
        collection.add(ids=[f"note-{k}" for k in range(i, min(j, len(texts)))],
                       embeddings=vectors[i:j], documents=texts[i:j])  # fmt: skip
    summary = {"path": str(out / "chroma"), "collection": args.collection,
               "count": collection.count(), "dim": int(vectors.shape[1]), "embedder": embedder.name,
               "faker_seed": args.seed, "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
    (out / "store.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
