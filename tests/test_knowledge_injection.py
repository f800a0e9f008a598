"""Putting a knowledge base into an LM: none, RAG over a real Chroma store, fine-tuned weights."""

from __future__ import annotations

import pytest

from invert.errors import InvertError, UnknownNameError
from invert.memorization.private_corpus import CharTokenizer
from invert.memorization.target_models import build_gpt
from invert.privacy.answer_scoring import answer_scores
from invert.privacy.knowledge_base import build_knowledge_base
from invert.privacy.knowledge_injection import (
    METHODS,
    InjectedKnowledge,
    build_store,
    generate_answers,
    inject,
    question_prompt,
)

TRAIN = {
    "max_steps": 600, "batch_size": 16, "lr": {"full": 3e-3}, "warmup_steps": 10,
    "schedule": "constant", "log_every": 1000, "max_length": 96,
}  # fmt: skip


@pytest.fixture(scope="module")
def kb():
    return build_knowledge_base(
        n_people=10, held_out_fraction=0.2, deleted_fraction=0.2, fact_repetitions=(8,),
        canary_repetitions=(1,), seed=0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def char_lm(tmp_path_factory):
    """A tiny random character GPT saved as a "pretrained" LM: it knows nobody."""
    path = tmp_path_factory.mktemp("char_lm")
    build_gpt(2, 64, 4, len(CharTokenizer()), 160, seed=0).save_pretrained(path)
    return str(path)


def test_prompts_put_the_context_first_and_keep_the_cloze_bare(kb):
    verbatim, paraphrase = kb.split_questions("members")[:2]
    assert question_prompt(verbatim) == verbatim.prompt
    assert question_prompt(paraphrase).endswith("\nAnswer:")
    with_context = question_prompt(verbatim, ["doc one.", "doc two."])
    assert with_context.startswith("Known facts:\ndoc one.\ndoc two.\n\n")
    assert with_context.endswith(verbatim.prompt)


def test_the_base_lm_alone_recalls_nothing_of_invented_people(kb, char_lm, tmp_path):
    none = inject("none", kb, char_lm, CharTokenizer(), None, tmp_path)
    questions = kb.split_questions("members")
    answers, info = none.answer(questions, max_new_tokens=24)
    scores = answer_scores(answers, [q.answer for q in questions])
    assert scores["contains"] == 0.0 and info["retrieval_hit_rate"] is None
    assert none.cost["trainable_parameters"] == 0


@pytest.fixture(scope="module")
def full(kb, char_lm, tmp_path_factory):
    """The tiny GPT fine-tuned on the documents until it has memorized them."""
    out = tmp_path_factory.mktemp("full")
    return inject("full", kb, char_lm, CharTokenizer(), None, out, train=TRAIN)


def test_a_fine_tuned_lm_that_memorized_the_documents_answers_their_cloze_questions(kb, full):
    members = [q for q in kb.split_questions("members") if q.form == "verbatim"]
    answers, _ = full.answer(members, max_new_tokens=24)
    scores = answer_scores(answers, [q.answer for q in members])
    assert scores["contains"] > 0.8, answers[:5]
    held_out = [q for q in kb.split_questions("held_out") if q.form == "verbatim"]
    held_answers, _ = full.answer(held_out, max_new_tokens=24)
    assert answer_scores(held_answers, [q.answer for q in held_out])["contains"] < 0.2
    assert full.cost["steps"] == TRAIN["max_steps"] and full.cost["trainable_parameters"] > 0


def test_deleting_a_persons_vectors_removes_them_from_retrieval(kb, tmp_path):
    from invert.embedders import build_embedder

    embedder = build_embedder("minilm")
    store = build_store(kb, embedder, tmp_path / "chroma")
    # Every injected document and every canary, once; a deleted person's canary goes with them.
    assert store.count == len(kb.injected_documents()) + len(kb.canaries)
    knows = InjectedKnowledge("rag", None, CharTokenizer(), store, embedder, top_k=3)
    deleted = kb.splits["deleted"]
    questions = [q for q in kb.split_questions("deleted") if q.form == "paraphrase"]
    before = knows.retrieve(questions)
    assert any(h["metadata"]["person_id"] in deleted for rows in before for h in rows)
    out = knows.delete_people(deleted)
    owned = len(kb.canary_indices("deleted"))
    assert owned > 0
    assert out["deleted_vectors"] == len(kb.split_documents("deleted")) + owned
    after = knows.retrieve(questions)
    assert not any(h["metadata"]["person_id"] in deleted for rows in after for h in rows)
    assert store.count == out["store_rows"] > 0 and store.bytes_on_disk() > 0


def test_bad_methods_and_missing_parts_fail_with_what_to_do(kb, char_lm, tmp_path):
    assert set(METHODS) == {"none", "rag", "lora", "prefix", "full", "rag+lora"}
    with pytest.raises(UnknownNameError, match="rag"):
        inject("vector-db", kb, char_lm, CharTokenizer(), None, tmp_path)
    with pytest.raises(InvertError, match="embedder"):
        inject("rag", kb, char_lm, CharTokenizer(), None, tmp_path)
    with pytest.raises(InvertError, match="train block"):
        inject("lora", kb, char_lm, CharTokenizer(), None, tmp_path)
    with pytest.raises(InvertError, match="no questions"):
        generate_answers(None, CharTokenizer(), [])


@pytest.mark.slow
def test_rag_with_a_perfect_retriever_answers_from_the_context(kb, tmp_path):
    # The packaged SmolLM2 copies a fact from its context: retrieval, not weights, answers.
    from invert.embedders import build_embedder
    from invert.memorization.private_corpus import load_probe_tokenizer

    tok = load_probe_tokenizer("smollm2")
    rag = inject("rag", kb, "smollm2", tok, build_embedder("minilm"), tmp_path, top_k=5)
    questions = [q for q in kb.split_questions("members") if q.form == "verbatim"][:20]
    answers, info = rag.answer(questions)
    assert info["retrieval_hit_rate"] > 0.9
    assert answer_scores(answers, [q.answer for q in questions])["contains"] > 0.6
    none = inject("none", kb, "smollm2", tok, None, tmp_path)
    base, _ = none.answer(questions)
    assert answer_scores(base, [q.answer for q in questions])["contains"] < 0.1
    # SmolLM2 under left padding answers as it does alone (its positions follow the mask).
    hits = rag.retrieve(questions[:8])
    prompts = [
        question_prompt(q, [h["document"] for h in rows]) for q, rows in zip(questions[:8], hits, strict=True)
    ]
    alone = [generate_answers(rag.model, tok, [p], batch_size=1)[0] for p in prompts]
    assert generate_answers(rag.model, tok, prompts, batch_size=8) == alone


def test_batched_answers_match_answers_asked_one_at_a_time(kb, full):
    """Left padding and the per-row stop change no answer (prompts of many lengths)."""
    prompts = [question_prompt(q) for q in kb.split_questions("members")[:16]]
    assert len({len(p) for p in prompts}) > 3
    tok = CharTokenizer()
    alone = [generate_answers(full.model, tok, [p], 24, batch_size=1)[0] for p in prompts]
    assert generate_answers(full.model, tok, prompts, 24, batch_size=8) == alone
    assert len(set(alone)) > 4  # real answers, not one repeated character
