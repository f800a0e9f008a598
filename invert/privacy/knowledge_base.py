"""A private knowledge base for the "weights vs activations" experiment (issue #18).

Synthetic people the base LM cannot know, as one-fact documents, split into members, held-out
and deleted people, asked about as a ``verbatim`` cloze or a ``paraphrase`` (Allen-Zhu & Li's
extraction test, arXiv:2309.14316). The same base goes into a RAG store and into weights; facts
repeat 1, 2, 4, 8 times in training (Kandpal et al., arXiv:2211.08411); canaries (Carlini et
al., arXiv:1802.08232) come from ``private_corpus.make_canaries``, so exposure runs unchanged,
each renamed to one of the pool's members or deleted people (its owner), so a store can hold it
beside its owner's documents and deleting the owner deletes it.
"""

from __future__ import annotations

import datetime
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from faker import Faker

from invert.errors import EmptyInputError, InvertError, check_counts, unknown_name
from invert.memorization.private_corpus import (
    Canary,
    SecretSpace,
    make_canaries,
    random_split,
    secret_space,
)

FACTS = ("birth_date", "city", "employer", "phone", "relative")
SPLITS = ("members", "held_out", "deleted")
FORMS = ("verbatim", "paraphrase")
CANARY_TEMPLATE = "The account number of {first_name} {last_name} is {secret}."

# fmt: off
# Relation → gender of the relative's Faker first name, so no sister is named John.
RELATIONS = {"sister": "female", "mother": "female", "daughter": "female", "wife": "female",
             "brother": "male", "father": "male", "son": "male", "husband": "male"}
# Each template puts the answer after the name, so every document has a non-empty cloze prefix.
_DOCUMENT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth_date": ("{name} was born on {answer}.", "{name} celebrates a birthday on {answer}.",
                   "The birth date of {name} is {answer}."),
    "city": ("{name} lives in {answer}.", "{name} has a home in {answer}.",
             "The home town of {name} is {answer}."),
    "employer": ("{name} works for {answer}.", "{name} is employed by {answer}.",
                 "The employer of {name} is {answer}."),
    "phone": ("{name} has the phone number {answer}.", "{name} can be reached at {answer}.",
              "The telephone number of {name} is {answer}."),
    "relative": ("{name} has a {relation} named {answer}.", "The {relation} of {name} is {answer}.",
                 "{name}'s {relation} is called {answer}."),
}
# Questions, so never a prefix of a document; worded apart from the document templates.
_PARAPHRASE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth_date": ("What is {name}'s date of birth?", "When was {name} born?",
                   "On which day did {name} come into the world?"),
    "city": ("In which city does {name} live?", "Where is {name}'s residence?",
             "What town is {name} based in?"),
    "employer": ("Which company employs {name}?", "Where does {name} work?",
                 "What organisation pays {name}'s salary?"),
    "phone": ("What is {name}'s phone number?", "Which number should I dial to call {name}?",
              "How can {name} be contacted by phone?"),
    "relative": ("Who is {name}'s {relation}?", "What is the name of {name}'s {relation}?",
                 "Can you name {name}'s {relation}?"),
}
# fmt: on
# Working-age adults, from a fixed window so a seed gives the same people on any day.
_BIRTH_WINDOW = (datetime.date(1950, 1, 1), datetime.date(2000, 12, 31))
# Offsets keep the template and repetition draws off the Faker stream that makes the people.
_TEMPLATE_SEED, _REPETITION_SEED, _STREAM_SEED = 4_000_037, 5_000_011, 6_000_001
_CANARY_OWNER_SEED = 7_000_003


@dataclass(frozen=True)
class Person:
    """A synthetic person: an id, a unique full name and one answer string per fact."""

    person_id: str
    first_name: str
    last_name: str
    relation: str  # who ``facts["relative"]`` is to this person ("sister", ...)
    facts: dict[str, str]

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def record(self) -> dict[str, str]:
        """Field → string, as ``pii.field_value`` reads it (it derives ``full_name``)."""
        return {"first_name": self.first_name, "last_name": self.last_name, **self.facts}


@dataclass(frozen=True)
class Document:
    """One fact of one person as a short text, and how often it is injected (0: held out)."""

    person_id: str
    fact: str
    answer: str
    text: str
    prompt: str  # the text up to the answer: the verbatim cloze
    template: int
    split: str
    repetitions: int


@dataclass(frozen=True)
class Question:
    """A question about one fact; ``repetitions`` is how often its document was injected."""

    person_id: str
    fact: str
    form: str
    prompt: str
    answer: str
    split: str
    repetitions: int


@dataclass
class KnowledgeBase:
    """People, their documents and questions, the member/held-out/deleted split and canaries.

    Deleted people are injected like members (:meth:`injected_documents`, :meth:`training_texts`);
    the experiment deletes or unlearns them later and asks their questions to see what remains.
    """

    people: list[Person]
    splits: dict[str, list[str]]  # split name → person ids
    documents: list[Document]
    questions: list[Question]
    canaries: list[Canary]
    space: SecretSpace
    facts: tuple[str, ...]
    fact_repetitions: tuple[int, ...]
    seed: int
    canary_owners: list[str] = field(default_factory=list)  # person id per canary
    _by_id: dict[str, Person] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id = {p.person_id: p for p in self.people}

    def person(self, person_id: str) -> Person:
        """The person with ``person_id`` (as a document or question records it)."""
        if person_id not in self._by_id:
            raise unknown_name("person id", person_id, list(self._by_id))
        return self._by_id[person_id]

    def split_documents(self, split: str) -> list[Document]:
        """The documents of ``split``, once each; ``held_out`` ones are membership non-members."""
        (split,) = check_names("split", [split], SPLITS)
        return [d for d in self.documents if d.split == split]

    def split_questions(self, split: str) -> list[Question]:
        """The questions (every fact, both forms) about the people of ``split``."""
        (split,) = check_names("split", [split], SPLITS)
        return [q for q in self.questions if q.split == split]

    def injected_documents(self) -> list[Document]:
        """Members' and deleted people's documents, once each: what the store or weights get."""
        return [d for d in self.documents if d.split != "held_out"]

    def canary_indices(self, split: str) -> list[int]:
        """Indices into ``canaries`` of the canaries owned by people of ``split``."""
        (split,) = check_names("split", [split], SPLITS)
        people = set(self.splits[split])
        return [i for i, owner in enumerate(self.canary_owners) if owner in people]

    def training_texts(self, seed: int | None = None) -> list[str]:
        """Injected documents and canaries, each repeated, shuffled by ``seed`` (None: own seed)."""
        texts = [d.text for d in self.injected_documents() for _ in range(d.repetitions)]
        texts += [c.text for c in self.canaries for _ in range(c.repetitions)]
        rng = np.random.default_rng(_STREAM_SEED + (self.seed if seed is None else seed))
        return [texts[i] for i in rng.permutation(len(texts))]

    def summary(self) -> dict[str, Any]:
        """Counts only: no names or facts (safe to log)."""
        injected = self.injected_documents()
        return {
            "n_people": len(self.people),
            **{f"n_{s}": len(self.splits[s]) for s in SPLITS},
            "facts": list(self.facts),
            "n_injected_documents": len(injected),
            "n_training_texts": sum(x.repetitions for x in [*injected, *self.canaries]),
            "n_questions": {s: len(self.split_questions(s)) for s in SPLITS},
            "fact_repetitions": list(self.fact_repetitions),
            "n_canaries": len(self.canaries),
            "canary_repetitions": sorted({c.repetitions for c in self.canaries}),
            "secret_space_size": self.space.size,
            "seed": self.seed,
        }


def check_names(kind: str, names: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    """``names`` without repeats, after checking each is one of ``known``."""
    if isinstance(names, str):
        raise TypeError(f"pass a list of {kind}s, not a single string")
    if not names:
        raise EmptyInputError(f"no {kind}s given; pass some of {', '.join(known)}")
    for name in names:
        if name not in known:
            raise unknown_name(kind, name, tuple(known))
    return tuple(dict.fromkeys(names))


def synthetic_people(n: int, seed: int = 0) -> list[Person]:
    """``n`` Faker (en_US) people with unique names, ids ``p0000``, ...: same seed, same people."""
    check_counts(n_people=n)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    start, end = _BIRTH_WINDOW
    people: list[Person] = []
    names: set[str] = set()
    while len(people) < n:
        first, last = fake.first_name(), fake.last_name()
        if f"{first} {last}" in names:
            continue  # a repeated name would make its questions ambiguous
        names.add(f"{first} {last}")
        born = start + datetime.timedelta(days=fake.random.randrange((end - start).days + 1))
        relation = fake.random.choice(list(RELATIONS))
        relative = getattr(fake, f"first_name_{RELATIONS[relation]}")()
        facts = {
            "birth_date": f"{born:%B} {born.day}, {born.year}",
            "city": fake.city(),
            "employer": fake.company(),
            # One format: with Faker's mixed ones, recall would measure formatting, not memory.
            "phone": fake.numerify("%##-###-####"),
            "relative": f"{relative} {fake.last_name()}",
        }
        people.append(Person(f"p{len(people):04d}", first, last, relation, facts))
    return people


def _split_sizes(
    n_people: int, fractions: tuple[float, float], counts: tuple[int | None, int | None]
) -> list[int]:
    """Members, held-out and deleted counts; a count given overrides its fraction."""
    sizes = []
    for name, fraction, count in zip(("held_out", "deleted"), fractions, counts, strict=True):
        if not 0.0 <= fraction < 1.0:
            raise InvertError(f"{name}_fraction must be in [0, 1), got {fraction!r}")
        if count is not None and count < 0:
            raise InvertError(f"n_{name} must be >= 0, got {count!r}")
        sizes.append(round(fraction * n_people) if count is None else count)
    members = n_people - sum(sizes)
    if members < 1:
        raise EmptyInputError(
            f"{n_people} people split into {sizes[0]} held-out and {sizes[1]} deleted leaves "
            f"{members} members; lower the held-out/deleted fractions or sizes, or raise n_people"
        )
    return [members, *sizes]


def build_knowledge_base(
    n_people: int = 200,
    held_out_fraction: float = 0.2,
    deleted_fraction: float = 0.1,
    fact_repetitions: Sequence[int] = (1, 2, 4, 8),
    canary_repetitions: Sequence[int] = (1, 2, 4, 8, 16),
    seed: int = 0,
    facts: Sequence[str] = FACTS,
    n_held_out: int | None = None,
    n_deleted: int | None = None,
    canaries_per_repetition: int = 1,
    secret_kind: str = "digits",
    secret_digits: int = 9,
    canary_template: str = CANARY_TEMPLATE,
) -> KnowledgeBase:
    """Builds the knowledge base: people, split, documents, questions and canaries.

    Args:
        n_people: Size of the pool split into members, held-out and deleted people.
        held_out_fraction: Share never injected (``n_held_out`` overrides it).
        deleted_fraction: Share injected and later deleted (``n_deleted`` overrides it).
        fact_repetitions: Each injected person gets one of these counts for all their facts,
            cycling in a seeded order within each split, so counts share people evenly.
        canary_repetitions: How often each group of canaries is inserted (empty: none).
        seed: Seeds the people, split, templates, repetitions, canaries and stream order.
        facts: The facts written and asked about (some of ``FACTS``).
        canaries_per_repetition, secret_kind, secret_digits, canary_template: As in
            ``private_corpus.build_private_corpus``. Members get one set of canaries and deleted
            people another (fewer when there are fewer deleted people than canaries, the
            highest repetition counts dropped), one canary per owner.

    Raises:
        InvertError: ``n_people`` < 1, a fraction outside [0, 1), or a repetition count < 1.
        EmptyInputError: The split leaves no members, or ``facts`` is empty.
        UnknownNameError: A fact name that is not one of ``FACTS``.
    """
    check_counts(n_people=n_people, canaries_per_repetition=canaries_per_repetition)
    facts = check_names("fact", facts, FACTS)
    fact_reps = tuple(int(r) for r in fact_repetitions)
    if not fact_reps or min(fact_reps) < 1:  # make_canaries checks the canaries' counts
        raise InvertError(f"fact_repetitions must be counts >= 1, got {list(fact_repetitions)}")
    sizes = _split_sizes(n_people, (held_out_fraction, deleted_fraction), (n_held_out, n_deleted))
    people = synthetic_people(n_people, seed)
    ids = [p.person_id for p in people]
    splits = dict(zip(SPLITS, random_split(ids, sizes, seed), strict=True))
    rng = random.Random(_REPETITION_SEED + seed)
    placed = {i: ("held_out", 0) for i in splits["held_out"]}  # id → (split, repetitions)
    for split in ("members", "deleted"):
        ids = rng.sample(splits[split], len(splits[split]))
        placed.update({i: (split, fact_reps[k % len(fact_reps)]) for k, i in enumerate(ids)})
    rng = random.Random(_TEMPLATE_SEED + seed)
    docs, questions = [], []
    for person, fact in itertools.product(people, facts):
        doc, asked = _write(person, fact, rng, *placed[person.person_id])
        docs.append(doc)
        questions += asked
    space = secret_space(secret_kind, secret_digits)
    canaries: list[Canary] = []
    owners: list[str] = []
    by_id = {p.person_id: p for p in people}
    rng = random.Random(_CANARY_OWNER_SEED + seed)
    for k, split in enumerate(("members", "deleted")):
        drawn = make_canaries(
            canary_repetitions, canaries_per_repetition, space, seed + 101 * k, canary_template
        )
        for canary, owner in zip(
            drawn, rng.sample(splits[split], len(splits[split])), strict=False
        ):
            filled = canary_template.replace("{secret}", "\0").format_map(by_id[owner].record())
            prefix, suffix = filled.split("\0")
            canaries.append(Canary(prefix, canary.secret, suffix, canary.repetitions))
            owners.append(owner)
    return KnowledgeBase(
        people, splits, docs, questions, canaries, space, facts, fact_reps, seed, owners
    )


def _write(
    person: Person, fact: str, rng: random.Random, split: str, reps: int
) -> tuple[Document, list[Question]]:
    """One fact's document, then its verbatim and paraphrase questions."""
    fill = {"name": person.name, "relation": person.relation}
    index = rng.randrange(len(_DOCUMENT_TEMPLATES[fact]))
    head, tail = (
        part.format_map(fill) for part in _DOCUMENT_TEMPLATES[fact][index].split("{answer}")
    )
    answer, pid = person.facts[fact], person.person_id
    doc = Document(pid, fact, answer, head + answer + tail, head.rstrip(), index, split, reps)
    prompts = (doc.prompt, rng.choice(_PARAPHRASE_TEMPLATES[fact]).format_map(fill))
    return doc, [
        Question(pid, fact, f, p, answer, split, reps) for f, p in zip(FORMS, prompts, strict=True)
    ]
