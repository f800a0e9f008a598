"""The private knowledge base of the weights-vs-activations experiment: people, documents,
questions, splits, repetitions, canaries and answer scoring (issue #18)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from invert.errors import EmptyInputError, InvertError, UnknownNameError
from invert.inversion.metrics import LengthMismatchError
from invert.memorization.private_corpus import Canary
from invert.privacy.answer_scoring import (
    answer_scores,
    answer_scores_by,
    normalize_answer,
    pii_share,
)
from invert.privacy.knowledge_base import FACTS, SPLITS, build_knowledge_base, synthetic_people


@pytest.fixture(scope="module")
def kb():
    return build_knowledge_base(n_people=40, held_out_fraction=0.25, deleted_fraction=0.1, seed=3)


# --- people and determinism ----------------------------------------------------------------------


def test_same_seed_gives_identical_knowledge_base_and_stream():
    a, b = build_knowledge_base(n_people=30, seed=7), build_knowledge_base(n_people=30, seed=7)
    assert a == b
    assert a.training_texts() == b.training_texts()


def test_different_seed_gives_different_people():
    names = {p.name for p in build_knowledge_base(n_people=30, seed=0).people}
    other = {p.name for p in build_knowledge_base(n_people=30, seed=1).people}
    assert len(names & other) < 5


def test_people_have_unique_names_all_facts_and_fixed_window_birth_dates():
    people = synthetic_people(300, seed=0)
    assert len({p.name for p in people}) == 300
    assert len({p.person_id for p in people}) == 300
    for person in people:
        assert set(person.facts) == set(FACTS)
        assert 1950 <= int(person.facts["birth_date"][-4:]) <= 2000
        assert person.facts["relative"] != person.name


# --- splits --------------------------------------------------------------------------------------


def test_splits_are_disjoint_cover_the_pool_and_have_the_requested_sizes(kb):
    ids = [set(kb.splits[s]) for s in SPLITS]
    assert sum(len(s) for s in ids) == len(set().union(*ids)) == 40
    assert set().union(*ids) == {p.person_id for p in kb.people}
    assert [len(kb.splits[s]) for s in SPLITS] == [26, 10, 4]


def test_explicit_counts_override_fractions():
    kb = build_knowledge_base(n_people=20, n_held_out=3, n_deleted=0, canary_repetitions=())
    assert [len(kb.splits[s]) for s in SPLITS] == [17, 3, 0]
    assert kb.canaries == []


def test_injected_documents_are_members_and_deleted_never_held_out(kb):
    injected = {d.person_id for d in kb.injected_documents()}
    assert injected == set(kb.splits["members"]) | set(kb.splits["deleted"])
    held_out = kb.split_documents("held_out")
    assert {d.person_id for d in held_out} == set(kb.splits["held_out"])
    assert all(d.repetitions == 0 for d in held_out)
    stream = set(kb.training_texts())
    assert not stream & {d.text for d in held_out}
    assert {d.text for d in kb.split_documents("deleted")} <= stream


# --- documents and questions ---------------------------------------------------------------------


def test_one_short_document_per_person_and_fact_holding_its_answer(kb):
    assert Counter((d.person_id, d.fact) for d in kb.documents) == Counter(
        {(p.person_id, f): 1 for p in kb.people for f in FACTS}
    )
    for doc in kb.documents:
        person = kb.person(doc.person_id)
        assert doc.answer == person.facts[doc.fact]
        assert person.name in doc.text and doc.answer in doc.text
        assert len(doc.text.split()) <= 25
    assert len({d.template for d in kb.documents}) > 1  # templates vary


def test_every_fact_has_a_verbatim_and_a_paraphrase_question_with_the_document_answer(kb):
    docs = {(d.person_id, d.fact): d for d in kb.documents}
    forms = Counter((q.person_id, q.fact, q.form) for q in kb.questions)
    assert forms == Counter(
        {(*key, form): 1 for key in docs for form in ("verbatim", "paraphrase")}
    )
    for q in kb.questions:
        doc = docs[(q.person_id, q.fact)]
        assert (q.answer, q.split, q.repetitions) == (doc.answer, doc.split, doc.repetitions)


def test_verbatim_prompt_is_the_document_up_to_the_answer_and_paraphrase_is_not(kb):
    docs = {(d.person_id, d.fact): d for d in kb.documents}
    paraphrases = set()
    for q in kb.questions:
        doc = docs[(q.person_id, q.fact)]
        if q.form == "verbatim":
            assert doc.text.startswith(q.prompt)
            assert doc.text[len(q.prompt) :].lstrip().startswith(doc.answer)
        else:
            assert not doc.text.startswith(q.prompt)
            assert q.answer not in q.prompt and kb.person(q.person_id).name in q.prompt
            paraphrases.add(q.prompt.replace(kb.person(q.person_id).name, "X"))
    assert len(paraphrases) > len(FACTS)  # several paraphrase templates per fact


def test_questions_per_split_cover_that_split_only(kb):
    for split in SPLITS:
        questions = kb.split_questions(split)
        assert {q.person_id for q in questions} == set(kb.splits[split])
        assert len(questions) == 2 * len(FACTS) * len(kb.splits[split])


def test_fact_subset_writes_and_asks_only_those_facts():
    kb = build_knowledge_base(n_people=10, facts=["city", "phone", "city"])
    assert kb.facts == ("city", "phone")
    assert {d.fact for d in kb.documents} == {q.fact for q in kb.questions} == {"city", "phone"}


# --- repetitions and canaries --------------------------------------------------------------------


def test_stream_repeats_each_document_exactly_as_recorded(kb):
    counts = Counter(kb.training_texts())
    for doc in kb.injected_documents():
        assert counts[doc.text] == doc.repetitions >= 1
    for split in ("members", "deleted"):
        reps = Counter(d.repetitions for d in kb.split_documents(split) if d.fact == "city")
        assert set(reps) <= {1, 2, 4, 8} and max(reps.values()) - min(reps.values()) <= 1
    assert {d.repetitions for d in kb.split_documents("members")} == {1, 2, 4, 8}


def test_stream_order_is_seeded_but_its_contents_are_fixed(kb):
    assert kb.training_texts(seed=1) != kb.training_texts(seed=2)
    assert Counter(kb.training_texts(seed=1)) == Counter(kb.training_texts(seed=2))


def test_canaries_repeat_as_asked_in_the_stream():
    kb = build_knowledge_base(
        n_people=20, n_held_out=4, n_deleted=3, canary_repetitions=(1, 3, 5),
        canaries_per_repetition=2,
    )  # fmt: skip
    assert all(isinstance(c, Canary) for c in kb.canaries)
    members, deleted = kb.canary_indices("members"), kb.canary_indices("deleted")
    assert sorted(kb.canaries[i].repetitions for i in members) == [1, 1, 3, 3, 5, 5]
    # Three deleted people: one canary each, the highest counts left out.
    assert sorted(kb.canaries[i].repetitions for i in deleted) == [1, 1, 3]
    assert kb.canary_indices("held_out") == [] and len(set(kb.canary_owners)) == 9
    for i, owner in enumerate(kb.canary_owners):  # each canary names its owner
        assert kb.canaries[i].prefix == f"The account number of {kb.person(owner).name} is "
    counts = Counter(kb.training_texts())
    for canary in kb.canaries:
        assert counts[canary.text] == canary.repetitions
        assert canary.text.startswith("The account number of ") and len(canary.secret) == 9
    assert sum(counts.values()) == kb.summary()["n_training_texts"]


# --- scoring -------------------------------------------------------------------------------------


def test_answer_scores_exact_contains_and_f1():
    gold = ["March 3, 1981"]
    assert answer_scores(["march 3 1981"], gold) == {
        "n": 1,
        "exact_match": 1.0,
        "contains": 1.0,
        "token_f1": 1.0,
    }
    wrong = answer_scores(["Dalton-Reyes LLC"], gold)
    assert wrong["exact_match"] == wrong["contains"] == wrong["token_f1"] == 0.0
    longer = answer_scores(["born on March 3, 1981 in Ohio"], gold)
    assert longer["exact_match"] == 0.0 and longer["contains"] == 1.0
    assert 0.0 < longer["token_f1"] < 1.0
    partial = answer_scores(["March 4, 1981"], gold)
    assert partial["exact_match"] == partial["contains"] == 0.0
    assert partial["token_f1"] == pytest.approx(2 / 3)


def test_contains_match_needs_whole_words_and_punctuation_does_not_matter():
    assert answer_scores(["Annabel Lee"], ["Ann"])["contains"] == 0.0
    assert answer_scores(["call 555 123 4567 today"], ["555-123-4567"])["contains"] == 1.0
    assert normalize_answer("  Dalton-Reyes, LLC. ") == "dalton reyes llc"


def test_answer_scores_rejects_bad_input():
    with pytest.raises(LengthMismatchError):
        answer_scores(["a", "b"], ["a"])
    with pytest.raises(EmptyInputError):
        answer_scores([], [])
    with pytest.raises(TypeError):
        answer_scores("a", "a")


def test_breakdown_by_form_and_repetitions(kb):
    questions = kb.split_questions("members")
    # A "model" that recalls verbatim prompts only for facts seen 8 times.
    predictions = [
        q.answer if q.form == "verbatim" and q.repetitions == 8 else "no idea" for q in questions
    ]
    scores = answer_scores_by(predictions, questions)
    assert scores["form"]["paraphrase"]["exact_match"] == 0.0
    assert scores["repetitions"][8]["exact_match"] == 0.5
    assert scores["repetitions"][1]["exact_match"] == 0.0
    assert sorted(scores["repetitions"]) == [1, 2, 4, 8]
    assert scores["all"]["n"] == len(questions)
    with pytest.raises(UnknownNameError, match="form"):
        answer_scores_by(predictions, questions, by=["colour"])


def test_pii_share_counts_the_person_fields_a_text_reveals(kb):
    person = kb.people[0]
    docs = [d.text for d in kb.documents if d.person_id == person.person_id]
    assert pii_share(" ".join(docs), person) == 1.0
    assert pii_share(docs[0], person) == pytest.approx(1 / len(FACTS))
    assert pii_share(f"I know nothing about {person.name}.", person) == 0.0
    assert pii_share(person.name.upper(), person, fields=["full_name", "phone"]) == 0.5
    with pytest.raises(UnknownNameError, match="birth_date"):
        pii_share("x", person, fields=["ssn"])


# --- summary and errors --------------------------------------------------------------------------


def test_summary_holds_counts_and_no_private_text(kb):
    summary = kb.summary()
    text = json.dumps(summary)
    for person in kb.people:
        for value in (person.first_name, person.last_name, *person.facts.values()):
            assert value not in text
    for canary in kb.canaries:
        assert canary.secret not in text and canary.prefix not in text
    assert (summary["n_members"], summary["n_held_out"], summary["n_deleted"]) == (26, 10, 4)
    assert summary["n_questions"]["held_out"] == 10 * 2 * len(FACTS)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_people": 0}, InvertError, "n_people"),
        (
            {"n_people": 10, "held_out_fraction": 0.6, "deleted_fraction": 0.4},
            EmptyInputError,
            "members",
        ),
        ({"n_people": 10, "n_held_out": 5, "n_deleted": 5}, EmptyInputError, "members"),
        ({"held_out_fraction": 1.0}, InvertError, "held_out_fraction"),
        ({"n_deleted": -1}, InvertError, "n_deleted"),
        ({"facts": ["city", "shoe_size"]}, UnknownNameError, "birth_date, city, employer"),
        ({"facts": []}, EmptyInputError, "fact"),
        ({"fact_repetitions": (1, 0)}, InvertError, "fact_repetitions"),
        ({"fact_repetitions": ()}, InvertError, "fact_repetitions"),
        ({"canary_repetitions": (0,)}, InvertError, "canary repetitions"),
    ],
)
def test_bad_input_raises_a_named_error(kwargs, error, match):
    with pytest.raises(error, match=match):
        build_knowledge_base(**kwargs)


def test_unknown_split_or_person_raises_a_named_error(kb):
    with pytest.raises(UnknownNameError, match="held_out"):
        kb.split_documents("test")
    with pytest.raises(UnknownNameError, match="person id"):
        kb.person("nobody")
