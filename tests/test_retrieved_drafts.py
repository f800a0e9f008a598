"""The prefix LM that reads a retrieved draft: the index, leave-one-out drafts, save/load."""

from __future__ import annotations

import pytest
import torch
from helpers import MAX_TOKENS, TEXTS, fake_embeddings, make_trainer, states_equal, tiny_inverter

from invert.errors import InvertError
from invert.inversion.search.sentence_rewrites import SentenceRewriter
from invert.models.loading import load_inverter
from invert.models.retrieved_draft import RetrievedDraftIndex

DRAFT = 6


def token_ids(inverter, texts, width=DRAFT):
    rows = inverter.tokenizer(texts, add_special_tokens=False)["input_ids"]
    pad = inverter.config.hint_separator_id
    return torch.tensor([r[:width] + [pad] * (width - len(r[:width])) for r in rows])


def test_the_index_returns_the_nearest_text_and_leave_one_out_skips_itself():
    keys = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    index = RetrievedDraftIndex(2, draft_tokens=3, pad_id=9)
    index.set_corpus([[1, 2, 3, 4], [5], [6, 7]], keys * 5)  # cosine: the scale is ignored
    assert index.nearest(keys).tolist() == [0, 1, 2]
    assert index.nearest(keys, exclude_self=True).tolist() == [1, 0, 1]
    # Cut to draft_tokens, padded with pad_id.
    assert index.drafts(keys).tolist() == [[1, 2, 3], [5, 9, 9], [6, 7, 9]]
    assert index.nearest(keys, exclude_self=True, chunk=1).tolist() == [1, 0, 1]


def test_the_index_refuses_bad_input_with_what_it_expected():
    index = RetrievedDraftIndex(4, draft_tokens=2)
    with pytest.raises(InvertError, match="empty"):
        index.nearest(torch.zeros(1, 4))
    with pytest.raises(InvertError, match="empty corpus"):
        index.set_corpus([], torch.zeros(0, 4))
    with pytest.raises(InvertError, match=r"\[2, 4\].*\[2, 3\]"):
        index.set_corpus([[1], [2]], torch.zeros(2, 3))
    with pytest.raises(InvertError, match="NaN"):
        index.set_corpus([[1], [2]], torch.tensor([[float("nan")] * 4, [1.0] * 4]))
    index.set_corpus([[1], [2]], torch.eye(2, 4))
    with pytest.raises(InvertError, match=r"\[n, 4\].*\[1, 3\]"):
        index.nearest(torch.zeros(1, 3))
    with pytest.raises(InvertError, match="leave-one-out"):
        index.nearest(torch.zeros(3, 4), exclude_self=True)


def test_set_draft_corpus_gives_each_pair_its_nearest_other_text():
    inverter = tiny_inverter(draft_tokens=DRAFT)
    embeddings = fake_embeddings()
    drafts = inverter.set_draft_corpus(TEXTS, embeddings)
    assert inverter.config.draft_corpus_size == len(TEXTS)
    unit = torch.nn.functional.normalize(embeddings, dim=-1)
    sims = unit @ unit.T
    sims.fill_diagonal_(-2)
    expected = token_ids(inverter, [TEXTS[j] for j in sims.argmax(1).tolist()])
    assert torch.equal(drafts, expected)
    # At inference a training embedding's nearest text is its own.
    assert torch.equal(inverter.drafts(embeddings), token_ids(inverter, TEXTS))
    with pytest.raises(InvertError, match="draft_tokens"):
        tiny_inverter().set_draft_corpus(TEXTS, embeddings)


@pytest.fixture(scope="module")
def copier(tmp_path_factory):
    """A tiny hinted inverter whose embedding and hints say nothing (every pair has the same),
    trained to write the text its draft holds: whatever it writes, it read off the draft."""
    inverter = tiny_inverter(draft_tokens=DRAFT, hint_tokens=3, hint_vocabulary=64, hint_hidden_dim=16)
    same = fake_embeddings(1).expand(len(TEXTS), -1).clone()
    inverter.set_draft_corpus(TEXTS, fake_embeddings())
    trainer = make_trainer(inverter, tmp_path_factory.mktemp("copier"), embeddings=same,
                           hints=inverter.hints(same), drafts=token_ids(inverter, TEXTS),
                           max_steps=150, lr=3e-3, warmup_steps=10)  # fmt: skip
    trainer.train()
    inverter.eval()
    return inverter, same


ORDER = [3, 0, 7, 1, 6, 2, 5, 4]


def first_words(texts, n=3):  # within DRAFT tokens: all the copier can have read
    return [" ".join(t.split()[:n]) for t in texts]


def test_the_lm_writes_what_its_draft_says(copier):
    inverter, same = copier
    drafts = token_ids(inverter, [TEXTS[i] for i in ORDER])
    ids = inverter._generate_ids(same, draft_ids=drafts, max_new_tokens=MAX_TOKENS, do_sample=False)
    written = inverter.tokenizer.batch_decode(ids, skip_special_tokens=True)
    assert first_words(written) == first_words([TEXTS[i] for i in ORDER])


def test_a_rewrite_reads_the_text_it_rewrites_as_the_draft(copier):
    # Not the index's nearest text (the same one for every query here): the text given.
    inverter, same = copier
    texts = [TEXTS[i] for i in ORDER]
    rewritten = SentenceRewriter(inverter, same).rewrite(list(range(len(texts))), texts)
    assert first_words(rewritten) == first_words(texts)


def test_the_conditioning_has_num_input_vectors_vectors(copier):
    inverter, same = copier
    assert inverter.num_input_vectors == 2 + 3 + DRAFT + 1
    assert inverter.conditioning(same).shape[1] == inverter.num_input_vectors


def test_the_draft_index_saves_and_reloads_with_the_inverter(copier, tmp_path):
    inverter, _ = copier
    inverter.save_pretrained(tmp_path / "inverter")
    loaded = load_inverter(tmp_path / "inverter")
    assert states_equal(inverter, loaded)
    queries = fake_embeddings()
    assert torch.equal(loaded.drafts(queries), inverter.drafts(queries))
    assert loaded.generate_texts(queries) == inverter.generate_texts(queries)


def test_a_negative_draft_length_is_refused():
    with pytest.raises(InvertError, match="draft_tokens"):
        tiny_inverter(draft_tokens=-1)


def test_drafts_are_chosen_in_fp32_under_autocast(monkeypatch):
    # bf16 decoding must retrieve the draft the LM trained with: bf16 cosines tie near neighbours.
    inverter = tiny_inverter(draft_tokens=DRAFT)
    inverter.set_draft_corpus(TEXTS, fake_embeddings())
    seen = []
    nearest = inverter.draft_index.drafts

    def spy(embeddings, **kwargs):
        seen.append((torch.is_autocast_enabled("cpu"), embeddings.dtype))
        return nearest(embeddings, **kwargs)

    monkeypatch.setattr(inverter.draft_index, "drafts", spy)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = inverter.drafts(fake_embeddings())
    assert seen == [(False, torch.float32)]
    assert torch.equal(under_autocast, inverter.drafts(fake_embeddings()))
