"""Corrector: learns to fix hypotheses, beam search, early stop, caching, pairing, save/load."""

from __future__ import annotations

import json

import pytest
import torch
from correction_helpers import CountingEmbedder, HashWordEmbedder
from helpers import (
    EMBED_DIM,
    TEXTS,
    TINY_LLAMA,
    fake_embeddings,
    make_trainer,
    states_equal,
    tiny_inverter,
    tokenizer_path,
)

from invert.api import invert_embeddings
from invert.inversion.correction import correct
from invert.inversion.correction_data import (
    CorrectionDataset,
    correction_collator,
    corrector_round,
    embed_or_zero,
    inverter_hypotheses,
)
from invert.models.corrector import CorrectorMismatchError
from invert.models.loading import build_corrector, load_corrector
from invert.training import Trainer, TrainerConfig


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A half-trained tiny inverter, its cached hypotheses, and a corrector trained on them."""
    root = tmp_path_factory.mktemp("correction")
    embedder = HashWordEmbedder()
    embeddings = embedder.encode(TEXTS)
    inverter = tiny_inverter(seed=0)
    # Few steps on purpose: hypotheses must be imperfect for correction to have work to do.
    make_trainer(inverter, root / "inv", embeddings=embeddings, max_steps=25, lr=3e-3).train()
    inverter.eval()
    examples = inverter_hypotheses(inverter, embedder, TEXTS, embeddings, cache_root=root / "cache")
    torch.manual_seed(0)
    corrector = build_corrector(inverter, num_prefix_tokens=2, projection_hidden_dim=32)
    collate = correction_collator(corrector.tokenizer, corrector.config.max_text_tokens)
    cfg = TrainerConfig(
        output_dir=str(root / "cor"),
        max_steps=100,
        batch_size=8,
        lr=3e-3,
        warmup_steps=10,
        log_every=10,
    )
    Trainer(corrector, CorrectionDataset(examples), collate, cfg).train()
    corrector.eval()
    return dict(
        root=root,
        embedder=embedder,
        embeddings=embeddings,
        inverter=inverter,
        examples=examples,
        corrector=corrector,
    )


def test_generate_matches_teacher_forcing(setup):
    # Left-padded contexts of different lengths: generate() and forward() must agree on
    # positions, or the corrector would be trained on one layout and run on another.
    cor, ex = setup["corrector"], setup["examples"]
    hyps = ["", "a", *ex.hypotheses[2:]]
    ids, mask = cor.tokenize_hypotheses(hyps)
    e, h = ex.embeddings, ex.hypothesis_embeddings
    with torch.no_grad():
        ctx, ctx_mask = cor.context(e, h, ids, mask)
        gen = cor.lm.generate(
            inputs_embeds=ctx,
            attention_mask=ctx_mask,
            max_new_tokens=5,
            min_new_tokens=5,
            do_sample=False,
            pad_token_id=0,
        )
        logits = cor(e, h, ids, mask, gen, torch.ones_like(gen)).logits
    assert torch.equal(logits[:, -6:-1].argmax(-1), gen)


def test_hypotheses_are_imperfect_and_cached(setup, monkeypatch):
    s = setup
    assert s["examples"].hypotheses != TEXTS
    monkeypatch.setattr(s["inverter"], "generate_texts", lambda *a, **k: pytest.fail("not cached"))
    again = inverter_hypotheses(
        s["inverter"], s["embedder"], TEXTS, s["embeddings"], cache_root=s["root"] / "cache"
    )
    assert again.hypotheses == s["examples"].hypotheses
    assert torch.equal(again.hypothesis_embeddings, s["examples"].hypothesis_embeddings)


def test_one_correction_step_raises_cosine(setup):
    s = setup
    res = correct(
        s["embeddings"],
        s["inverter"],
        s["corrector"],
        s["embedder"],
        num_steps=1,
        keep_previous=False,
        early_stop_cosine=None,
    )
    before, after = res.mean_cosine_by_step
    assert after > before + 0.05, res.mean_cosine_by_step
    assert len(res.best_cosine_by_step) == 2 and len(res.best_cosine_by_step[0]) == len(TEXTS)


def test_beam_width_one_is_greedy_correction(setup):
    s = setup
    inv, cor, emb = s["inverter"], s["corrector"], s["embedder"]
    res = correct(
        s["embeddings"], inv, cor, emb, num_steps=3, keep_previous=False, early_stop_cosine=None
    )
    hyps = inv.generate_texts(s["embeddings"])
    for _ in range(3):
        proposals = cor.generate_corrections(s["embeddings"], embed_or_zero(hyps, emb), hyps)
        hyps = [p[0] for p in proposals]
    assert res.texts == hyps


def test_keep_previous_never_lowers_cosine_and_beams_help(setup):
    s = setup
    args = (s["embeddings"], s["inverter"], s["corrector"], s["embedder"])
    greedy = correct(*args, num_steps=2, early_stop_cosine=None)
    wide = correct(
        *args, num_steps=2, sequence_beam_width=2, num_candidates=2, early_stop_cosine=None
    )
    for res in (greedy, wide):
        steps = torch.tensor(res.best_cosine_by_step)
        assert (steps[1:] >= steps[:-1] - 1e-6).all()
    assert wide.mean_cosine_by_step[-1] >= greedy.mean_cosine_by_step[-1] - 0.02


def test_early_stop_saves_corrector_calls(setup):
    s = setup
    args = (s["embeddings"], s["inverter"], s["corrector"], s["embedder"])
    full = correct(*args, num_steps=2, early_stop_cosine=None)
    moved = sum(a != b for a, b in zip(*full.texts_by_step[:2], strict=True))
    # Step 2 corrects only the examples step 1 changed; the others have converged.
    assert full.corrector_inputs == len(TEXTS) + moved
    threshold = sorted(full.best_cosine_by_step[0])[len(TEXTS) // 2]
    some = correct(*args, num_steps=2, early_stop_cosine=threshold)
    assert 0 < some.corrector_inputs < full.corrector_inputs
    none = correct(*args, num_steps=2, early_stop_cosine=-1.0)
    assert none.corrector_inputs == 0 and none.steps_run == 0
    assert len(none.best_cosine_by_step) == 3


def test_converged_beams_are_not_corrected_again(setup):
    s = setup
    args = (s["embeddings"], s["inverter"], s["corrector"], s["embedder"])
    res = correct(*args, num_steps=6, early_stop_cosine=None)
    for step in range(1, 6):
        # Once a step leaves an example's text unchanged, it never changes again.
        for i, (a, b) in enumerate(zip(*res.texts_by_step[step - 1 : step + 1], strict=True)):
            if a == b:
                assert all(t[i] == a for t in res.texts_by_step[step:])
    steps = res.texts_by_step

    def settled_before(k: int, i: int) -> bool:  # some step j < k left example i unchanged
        return any(steps[j - 1][i] == steps[j][i] for j in range(1, k))

    expected = sum(not settled_before(k, i) for k in range(1, 7) for i in range(len(TEXTS)))
    assert res.corrector_inputs == expected < 6 * len(TEXTS)
    # Sampling draws new proposals each step, so nothing counts as converged.
    sampled = correct(*args, num_steps=6, early_stop_cosine=None, do_sample=True)
    assert sampled.corrector_inputs == 6 * len(TEXTS)


def test_no_text_embedded_twice(setup):
    s = setup
    counting = CountingEmbedder(s["embedder"])
    res = correct(
        s["embeddings"],
        s["inverter"],
        s["corrector"],
        counting,
        num_steps=3,
        sequence_beam_width=2,
        num_candidates=3,
        early_stop_cosine=None,
        candidate_texts=[[TEXTS[0], TEXTS[0]]] * len(TEXTS),
    )
    assert 1 <= len(counting.calls) <= 4  # one batched call per step at most
    seen = [t for call in counting.calls for t in call]
    assert len(seen) == len(set(seen)) == res.embedded_texts


def test_nearest_neighbour_candidates_are_used(setup):
    s = setup
    res = correct(
        s["embeddings"],
        s["inverter"],
        s["corrector"],
        s["embedder"],
        num_steps=0,
        candidate_texts=[[t] for t in TEXTS],
    )
    assert res.texts == TEXTS


def test_invert_embeddings_with_corrector(setup):
    s = setup
    args = (s["embeddings"], s["inverter"])
    texts = invert_embeddings(*args, embedder=s["embedder"], corrector=s["corrector"], num_steps=2)
    expected = correct(*args, s["corrector"], s["embedder"], num_steps=2).texts
    assert texts == expected
    assert invert_embeddings(*args) == s["inverter"].generate_texts(s["embeddings"])


def test_pair_for_another_embedder_is_refused(setup):
    s = setup
    other = tiny_inverter(seed=1)
    other.config.embedder_name = "another-embedder"
    corrector = build_corrector(other, num_prefix_tokens=2, projection_hidden_dim=32)
    with pytest.raises(CorrectorMismatchError, match="another-embedder.*build_corrector"):
        correct(s["embeddings"], s["inverter"], corrector, s["embedder"])


def test_save_load_round_trip(setup, tmp_path):
    s = setup
    s["corrector"].save_pretrained(tmp_path / "c")
    loaded = load_corrector(tmp_path / "c")
    assert states_equal(loaded, s["corrector"])
    config = json.loads((tmp_path / "c" / "config.json").read_text())
    assert config["embedder_dim"] == EMBED_DIM and config["inverter_fingerprint"]
    assert str(tmp_path) not in json.dumps(config)
    ex = s["examples"]
    args = (ex.embeddings, ex.hypothesis_embeddings, ex.hypotheses)
    assert loaded.generate_corrections(*args) == s["corrector"].generate_corrections(*args)
    with pytest.raises(Exception, match="not a corrector"):
        s["inverter"].save_pretrained(tmp_path / "i")
        load_corrector(tmp_path / "i")


def test_second_round_adds_the_correctors_own_hypotheses(setup):
    s = setup
    extra = corrector_round(s["examples"], s["corrector"], s["embedder"])
    both = s["examples"] + extra
    assert len(CorrectionDataset(both)) == 2 * len(TEXTS)
    batch = correction_collator(s["corrector"].tokenizer, 12)(
        [CorrectionDataset(both)[i] for i in (0, 9)]
    )
    assert s["corrector"](**batch).loss.isfinite()


def test_corrector_starts_from_the_lora_inverters_merged_lm():
    inverter = tiny_inverter(tuning="lora", lora_r=2, seed=3)
    with torch.no_grad():
        for name, p in inverter.lm.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5)  # fresh LoRA B is zero: make the adapters matter
    corrector = build_corrector(inverter, tuning="lora", lora_r=2, num_prefix_tokens=2)
    assert corrector.config.lm_name_or_path.startswith("inverter:")
    ids = torch.tensor([[5, 9, 200, 7]])
    with torch.no_grad():
        merged_ref = inverter.lm(input_ids=ids).logits
        plain = corrector.lm(input_ids=ids).logits  # its own LoRA B starts at zero
    assert torch.allclose(merged_ref, plain, atol=1e-5)
    trainable = {n.split(".")[0] for n, p in corrector.named_parameters() if p.requires_grad}
    assert trainable == {"lm", "projections", "separator"}
    assert all("lora_" in n for n, p in corrector.lm.named_parameters() if p.requires_grad)
    assert torch.equal(
        corrector.projections["target"].mlp[0].weight, inverter.projection.mlp[0].weight
    )


def test_corrector_for_a_hypothesis_inverter_builds_its_own_lm():
    inverter = tiny_inverter("hypothesis")
    corrector = build_corrector(
        inverter,
        lm_config=TINY_LLAMA,
        tokenizer=tokenizer_path(),
        num_prefix_tokens=2,
        projection_hidden_dim=16,
    )
    assert corrector.config.embedder_name == inverter.config.embedder_name
    assert corrector.config.lm_name_or_path == "random-init"
    out = corrector.generate_corrections(
        fake_embeddings(2), fake_embeddings(2, seed=1), ["a cat", ""], max_new_tokens=3
    )
    assert len(out) == 2 and all(len(o) == 1 for o in out)


def test_encoder_decoder_corrector_trains_and_round_trips(setup, tmp_path):
    inverter = tiny_inverter("hypothesis")
    corrector = build_corrector(inverter, architecture="encoder_decoder", projection_hidden_dim=32)
    assert corrector.config.lm_name_or_path.startswith("inverter:")
    collate = correction_collator(corrector.tokenizer, corrector.config.max_text_tokens)
    cfg = TrainerConfig(
        output_dir=str(tmp_path / "t"), max_steps=30, batch_size=8, lr=3e-3, log_every=1
    )
    history = Trainer(corrector, CorrectionDataset(setup["examples"]), collate, cfg).train().history
    losses = [h["train/loss"] for h in history if "train/loss" in h]
    assert losses[-1] < losses[0] - 1.5  # from ~ln(V): it learns (nats, not a ratio)
    corrector.save_pretrained(tmp_path / "c")
    loaded = load_corrector(tmp_path / "c")
    assert loaded.config.architecture == "encoder_decoder" and states_equal(loaded, corrector)
    ex = setup["examples"]
    args = (ex.embeddings[:3], ex.hypothesis_embeddings[:3], ex.hypotheses[:3])
    assert loaded.generate_corrections(*args) == corrector.eval().generate_corrections(*args)
    res = correct(setup["embeddings"][:3], inverter, loaded, setup["embedder"], num_steps=1)
    assert len(res.texts) == 3 and len(res.best_cosine_by_step) == 2
