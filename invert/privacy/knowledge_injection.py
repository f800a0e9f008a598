"""Putting a private knowledge base into an LM: nothing, a RAG store, the weights, or both.

Each method takes the same :class:`~invert.privacy.knowledge_base.KnowledgeBase` and leaves an
LM that answers questions about its people:

- ``none``: the base LM alone, the knowledge cut-off baseline.
- ``rag``: the documents embedded into a real Chroma store; each question retrieves its top-k
  documents into the prompt (Lewis et al. 2020, arXiv:2005.11401).
- ``lora``, ``prefix``, ``full``: the LM fine-tuned on the documents (facts and canaries repeated
  as the knowledge base says) with the shared trainer, as the memorization audit does.
- ``rag+lora``: both.

Questions are asked in one format for every method (``Question: ...`` for paraphrases, the bare
cloze for verbatim prompts), so recall differences come from where the knowledge lives.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invert.embedders import Embedder
from invert.errors import EmptyInputError, InvertError, unknown_name
from invert.memorization.extraction import greedy_continuations
from invert.memorization.fine_tune import train_on_texts
from invert.memorization.private_corpus import tokenize
from invert.memorization.target_models import load_pretrained_target
from invert.privacy.knowledge_base import Document, KnowledgeBase, Question
from invert.stores.chroma_writer import ChromaCollectionWriter

METHODS = ("none", "rag", "lora", "prefix", "full", "rag+lora")
TUNINGS = {"lora": "lora", "prefix": "prefix", "full": "full", "rag+lora": "lora"}
CONTEXT_HEADER = "Known facts:\n"


def question_context(context: Sequence[str]) -> str:
    """What goes before a question: the retrieved documents under a header ("" for none)."""
    return CONTEXT_HEADER + "\n".join(context) + "\n\n" if context else ""


def question_prompt(question: Question, context: Sequence[str] = ()) -> str:
    """The text the LM continues: retrieved documents (if any), then the question."""
    head = question_context(context)
    if question.form == "verbatim":
        return head + question.prompt
    return f"{head}Question: {question.prompt}\nAnswer:"


class _AnswerLineDone:
    """Stops a row once its answer's first line is complete (a line break after some text),
    the same line :func:`generate_answers` keeps; a leading line break does not stop it."""

    def __init__(self, tokenizer: Any, prompt_width: int) -> None:
        self.tokenizer, self.prompt_width = tokenizer, prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_: Any) -> torch.Tensor:
        texts = [
            self.tokenizer.decode(row, skip_special_tokens=True)
            for row in input_ids[:, self.prompt_width :].tolist()
        ]
        done = [("\n" in t.strip()) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


@torch.no_grad()
def _generate_left_padded(
    model: torch.nn.Module,
    rows: Sequence[Sequence[int]],
    max_new_tokens: int,
    pad_id: int,
    tokenizer: Any,
) -> list[list[int]]:
    """Greedy continuations of prompts of any lengths in one ``generate`` call (left padding)."""
    from transformers import GenerationConfig, StoppingCriteriaList

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    device = next(model.parameters()).device
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
        eos_token_id=getattr(tokenizer, "eos_token_id", None), pad_token_id=pad_id,
    )  # fmt: skip
    out = model.generate(
        input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config,
        stopping_criteria=StoppingCriteriaList([_AnswerLineDone(tokenizer, width)]),
    )  # fmt: skip
    return out[:, width:].cpu().tolist()


def generate_answers(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int = 16,
    batch_size: int = 32,
) -> list[str]:
    """Greedy answers, cut at the first line break.

    LMs with ``generate`` answer prompts sorted by length in left-padded batches, each row
    stopped once its first line is complete; other modules (the tests' tiny GPTs) batch prompts of
    equal length, which need no padding.
    """
    if not prompts:
        raise EmptyInputError("no questions to answer")
    rows = tokenize(tokenizer, prompts)
    pad = getattr(tokenizer, "pad_token_id", None) or 0
    groups: list[list[int]]
    if hasattr(model, "generate"):
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        groups = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    else:
        by_length: dict[int, list[int]] = defaultdict(list)
        for i, row in enumerate(rows):
            by_length[len(row)].append(i)
        groups = [
            idx[s : s + batch_size] for idx in by_length.values()
            for s in range(0, len(idx), batch_size)
        ]  # fmt: skip
    answers = [""] * len(prompts)
    for chunk in groups:
        if hasattr(model, "generate"):
            out = _generate_left_padded(
                model, [rows[i] for i in chunk], max_new_tokens, pad, tokenizer
            )
        else:
            prefix = torch.tensor([rows[i] for i in chunk], dtype=torch.long)
            out = greedy_continuations(model, prefix, max_new_tokens, pad).tolist()
        for i, ids in zip(chunk, out, strict=True):
            text = tokenizer.decode(ids, skip_special_tokens=True)
            answers[i] = text.strip().split("\n")[0].strip()
    return answers


@dataclass
class InjectedKnowledge:
    """An LM that knows (or does not know) the knowledge base, and what putting it there cost.

    Attributes:
        method: A name from ``METHODS``.
        model: The LM that answers.
        tokenizer: Its tokenizer.
        store: The RAG store (None for weights-only methods).
        embedder: Embeds questions for retrieval (None without a store).
        top_k: Documents retrieved per question.
        cost: Trainable parameters, training seconds, bytes stored.
    """

    method: str
    model: torch.nn.Module
    tokenizer: Any
    store: ChromaCollectionWriter | None = None
    embedder: Embedder | None = None
    top_k: int = 3
    cost: dict[str, Any] = field(default_factory=dict)

    def retrieve(self, questions: Sequence[Question]) -> list[list[dict[str, Any]]]:
        """Each question's retrieved rows ([] per question without a store)."""
        if self.store is None or self.embedder is None:
            return [[] for _ in questions]
        vectors = self.embedder.encode([q.prompt for q in questions]).numpy()
        return self.store.query(vectors, self.top_k)

    def answer(
        self, questions: Sequence[Question], max_new_tokens: int = 16, batch_size: int = 32
    ) -> tuple[list[str], dict[str, Any]]:
        """Answers and retrieval figures: hit rate (a retrieved document is the asked fact)."""
        started = time.perf_counter()
        hits = self.retrieve(questions)
        prompts = [
            question_prompt(q, [h["document"] for h in rows])
            for q, rows in zip(questions, hits, strict=True)
        ]
        answers = generate_answers(self.model, self.tokenizer, prompts, max_new_tokens, batch_size)
        seconds = time.perf_counter() - started
        found = [
            any(
                h["metadata"].get("person_id") == q.person_id
                and h["metadata"].get("fact") == q.fact
                for h in rows
            )
            for q, rows in zip(questions, hits, strict=True)
        ]
        prompt_tokens = [len(r) for r in tokenize(self.tokenizer, prompts)]
        info = {
            "retrieval_hit_rate": float(np.mean(found)) if self.store is not None else None,
            "prompt_tokens": float(np.mean(prompt_tokens)),
            "seconds_per_question": seconds / len(questions),
        }
        return answers, info

    def delete_people(self, person_ids: Sequence[str]) -> dict[str, Any]:
        """Forgets people where that is possible: their vectors leave the store.

        The weights cannot delete: forgetting there means retraining without them, whose cost
        is the training cost (reported by the experiment).
        """
        if self.store is None:
            return {"deleted_vectors": 0, "store_rows": None}
        removed = self.store.delete_where("person_id", list(person_ids))
        return {"deleted_vectors": removed, "store_rows": self.store.count}


def store_id(doc: Document) -> str:
    """A document's row id in the RAG store."""
    return f"{doc.person_id}-{doc.fact}"


def build_store(
    kb: KnowledgeBase, embedder: Embedder, path: str | Path, collection: str = "knowledge"
) -> ChromaCollectionWriter:
    """A Chroma store of the injected documents (members and the people to be deleted) and of
    their owners' canaries, each once: a store keeps a record, it does not repeat it."""
    docs = kb.injected_documents()
    ids = [store_id(d) for d in docs] + [f"canary-{i}" for i in range(len(kb.canaries))]
    texts = [d.text for d in docs] + [c.text for c in kb.canaries]
    split_of = {p: s for s, people in kb.splits.items() for p in people}
    metadata = [{"person_id": d.person_id, "fact": d.fact, "split": d.split} for d in docs] + [
        {"person_id": owner, "fact": "canary", "split": split_of[owner]}
        for owner in kb.canary_owners
    ]
    store = ChromaCollectionWriter(path, collection, embedder.dim)
    store.add(ids, embedder.encode(texts).numpy(), texts, metadata)
    return store


def inject(
    method: str,
    kb: KnowledgeBase,
    lm_name: str,
    tokenizer: Any,
    embedder: Embedder | None,
    out_dir: str | Path,
    train: Mapping[str, Any] | None = None,
    tuning: Mapping[str, Any] | None = None,
    top_k: int = 3,
    seed: int = 0,
    tuned: dict[str, tuple[torch.nn.Module, dict[str, Any]]] | None = None,
) -> InjectedKnowledge:
    """Puts the knowledge base into the LM by ``method``.

    Args:
        method: A name from ``METHODS``.
        kb: The knowledge base.
        lm_name: The base LM (``smollm2``, a folder, or a hub id online).
        tokenizer: Its tokenizer.
        embedder: The RAG store's embedder (needed by ``rag`` and ``rag+lora``).
        out_dir: Where the store and training runs go.
        train: :func:`invert.memorization.fine_tune.train_on_texts`'s ``train`` block (tuned
            methods).
        tuning: ``load_pretrained_target`` arguments (LoRA rank, prefix tokens).
        top_k: Documents retrieved per question.
        seed: Seeds training order.
        tuned: Models already trained here, by regime, with their cost: ``rag+lora`` reuses
            ``lora``'s rather than training the same adapter again (training is seeded, so it
            would be the same model). Every model this call trains is added.

    Raises:
        UnknownNameError: ``method`` is not one of ``METHODS``.
        InvertError: A RAG method without an embedder, or a tuned method without ``train``.
    """
    if method not in METHODS:
        raise unknown_name("knowledge injection method", method, METHODS)
    out_dir = Path(out_dir)
    uses_store = method.startswith("rag")
    if uses_store and embedder is None:
        raise InvertError(f"method {method!r} retrieves from a vector store: pass an embedder")
    cost: dict[str, Any] = {"trainable_parameters": 0, "train_seconds": 0.0, "steps": 0}
    regime = TUNINGS.get(method)
    if regime is None:
        from invert.models.pretrained_lm import load_causal_lm

        model = load_causal_lm(lm_name).eval()
    elif tuned is not None and regime in tuned:
        model, trained_cost = tuned[regime]
        cost.update(trained_cost)
    else:
        if train is None:
            raise InvertError(f"method {method!r} fine-tunes the LM: pass a train block")
        model, n_trainable = load_pretrained_target(lm_name, regime, **(tuning or {}))
        model, info = train_on_texts(
            model, tokenizer, kb.training_texts(seed), train, regime, out_dir / method, seed=seed
        )
        cost.update(  # what must be kept besides the base model: fp32 tuned parameters
            trainable_parameters=n_trainable, train_seconds=info["train_seconds"],
            steps=info["steps"], bytes_weights=4 * n_trainable,
        )  # fmt: skip
        if tuned is not None:
            tuned[regime] = (model, dict(cost))
    store = None
    if uses_store:
        started = time.perf_counter()
        store = build_store(kb, embedder, out_dir / method / "chroma")
        cost.update(store_seconds=time.perf_counter() - started, bytes_store=store.bytes_on_disk())
    return InjectedKnowledge(method, model, tokenizer, store, embedder, top_k, cost)
