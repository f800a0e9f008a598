"""Inverters: tiny models memorize, save/load exactly, tune only what their regime says."""

from __future__ import annotations

import json

import pytest
import torch
from correction_helpers import HashWordEmbedder
from helpers import (
    CORRUPTED_TEXTS,
    EMBED_DIM,
    EMBEDDER_NAME,
    TEXTS,
    TINY_LLAMA,
    changed_params,
    fake_embeddings,
    make_trainer,
    param_snapshot,
    tiny_inverter,
    train_losses,
)

from invert.errors import (
    CheckpointError,
    DimensionMismatchError,
    InvalidEmbeddingError,
    InvertError,
    UnknownNameError,
)
from invert.inversion.search.edit_search import edit_search
from invert.inversion.search.inverter_edits import InverterEditProposer
from invert.models import NearestNeighbourInverter, build_inverter, load_inverter
from invert.training.inversion_data import pair_collator

# Sizes and steps chosen so each kind memorizes the 8 texts in ~10 s on one CPU thread.
RECIPES = {
    "prefix_lm": dict(model=dict(tuning="full"), steps=120),
    "hypothesis": dict(
        model=dict(
            lm_config=dict(
                model_type="t5", d_model=64, d_kv=16, d_ff=128, num_layers=1, num_heads=4
            )
        ),
        steps=110,
    ),
}


@pytest.fixture(scope="module", params=list(RECIPES))
def trained(request, tmp_path_factory):
    """A tiny inverter of each kind, trained to memorize TEXTS from fake_embeddings()."""
    kind = request.param
    recipe = RECIPES[kind]
    model = tiny_inverter(kind, **recipe["model"])
    out = tmp_path_factory.mktemp(f"train-{kind}")
    result = make_trainer(
        model, out, max_steps=recipe["steps"], lr=3e-3, warmup_steps=10, log_every=10
    ).train()
    model.eval()
    return kind, model, result


def _logits(model: torch.nn.Module, embeddings: torch.Tensor) -> torch.Tensor:
    batch = pair_collator(model.tokenizer, model.config.max_text_tokens)(
        list(zip(TEXTS, embeddings, strict=True))
    )
    device = next(model.parameters()).device
    with torch.no_grad():
        return model(**{k: v.to(device) for k, v in batch.items()}).logits.cpu()


# --- training to memorization ------------------------------------------------------------


def test_tiny_inverter_reconstructs_every_training_text(trained):
    _, model, _ = trained
    assert model.generate_texts(fake_embeddings()) == TEXTS


def test_training_loss_falls(trained):
    _, _, result = trained
    losses = train_losses(result.history)
    assert len(losses) >= 5 and result.steps == RECIPES[trained[0]]["steps"]
    assert losses[0] > 3 * losses[-1], losses


def test_save_load_round_trip_is_exact_and_safetensors_only(trained, tmp_path):
    kind, model, _ = trained
    model.save_pretrained(tmp_path / "ckpt")
    files = {p.name for p in (tmp_path / "ckpt").rglob("*")}
    assert {"model.safetensors", "config.json"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle"))]
    assert (
        json.loads((tmp_path / "ckpt" / "config.json").read_text())["model_type"]
        == f"invert_{kind}"
    )

    loaded = load_inverter(tmp_path / "ckpt", device=str(next(model.parameters()).device))
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.config.embedder_name == EMBEDDER_NAME and loaded.config.embedder_dim == EMBED_DIM
    emb = fake_embeddings()
    assert torch.equal(_logits(loaded, emb), _logits(model, emb))
    assert loaded.generate_texts(emb) == model.generate_texts(emb) == TEXTS
    beams = dict(num_beams=3, num_return_sequences=2)
    assert loaded.generate_texts(emb[:2], **beams) == model.generate_texts(emb[:2], **beams)


def test_beam_search_returns_num_return_sequences_candidates(trained):
    _, model, _ = trained
    candidates = model.generate_texts(fake_embeddings()[:3], num_beams=4, num_return_sequences=3)
    assert len(candidates) == 3
    for text, row in zip(TEXTS[:3], candidates, strict=True):
        assert len(row) == 3 and all(isinstance(c, str) for c in row)
        assert row[0] == text  # the memorized text is the top beam


def test_generate_keeps_training_mode(trained):
    _, model, _ = trained
    model.train()
    try:
        model.generate_texts(fake_embeddings()[:1])
        assert model.training
    finally:
        model.eval()


def test_bf16_decoding_runs_under_autocast_and_still_reconstructs(trained, monkeypatch):
    _, model, _ = trained
    seen: list[bool] = []
    generate = model._generate_ids

    def spy(*args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu"))
        return generate(*args, **kwargs)

    monkeypatch.setattr(model, "_generate_ids", spy)
    monkeypatch.setenv("INVERT_CPU_BF16", "1")  # bf16 as asked, whatever this CPU measures
    try:
        assert model.set_decoding_precision("bf16") == "bf16"
        assert model.generate_texts(fake_embeddings()) == TEXTS
        assert seen and all(seen)
        monkeypatch.setenv("INVERT_CPU_BF16", "0")  # a CPU where bf16 is slower: fp32
        assert model.set_decoding_precision("bf16") == "no"
        seen.clear()
        assert model.generate_texts(fake_embeddings()) == TEXTS
        assert seen and not any(seen)
        with pytest.raises(InvertError, match="'no' or 'bf16'"):
            model.set_decoding_precision("fp16")
    finally:
        model.decoding_precision = "no"


# --- tuning regimes ----------------------------------------------------------------------


def _expected_trainable(tuning: str, names: list[str]) -> set[str]:
    if tuning == "full":
        return set(names)
    projection = {n for n in names if n.startswith("projection.")}
    if tuning == "prefix":
        return projection
    return projection | {n for n in names if "lora_" in n}


@pytest.mark.parametrize("tuning", ["prefix", "lora", "full"])
def test_tuning_regime_trains_exactly_its_parameters(tuning, tmp_path):
    model = tiny_inverter("prefix_lm", tuning=tuning)
    names = [n for n, _ in model.named_parameters()]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = _expected_trainable(tuning, names)
    assert trainable == expected
    n_projection = sum(n.startswith("projection.") for n in names)
    n_lora = sum("lora_" in n for n in names)
    assert n_lora == (2 * 7 * TINY_LLAMA["num_hidden_layers"] if tuning == "lora" else 0)
    assert (
        len(trainable)
        == {"prefix": n_projection, "lora": n_projection + n_lora, "full": len(names)}[tuning]
    )

    # Two optimizer steps: LoRA's B starts at zero, so A only gets a gradient on step 2.
    before = param_snapshot(model)
    make_trainer(model, tmp_path, max_steps=2, lr=1e-2).train()
    assert changed_params(before, model) == expected


def test_hypothesis_inverter_trains_every_parameter(tmp_path):
    model = tiny_inverter("hypothesis")
    assert all(p.requires_grad for p in model.parameters())
    before = param_snapshot(model)
    make_trainer(model, tmp_path, max_steps=1, lr=1e-2).train()
    unchanged = set(before) - changed_params(before, model)
    assert not unchanged


@pytest.mark.parametrize("tuning", ["prefix", "lora"])
def test_save_load_round_trip_per_tuning(tuning, tmp_path):
    model = tiny_inverter("prefix_lm", tuning=tuning).eval()
    with torch.no_grad():  # make the LoRA adapters matter (B starts at zero)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    model.save_pretrained(tmp_path)
    loaded = load_inverter(tmp_path, device="cpu")
    assert loaded.config.tuning == tuning
    emb = fake_embeddings()
    assert torch.equal(_logits(loaded, emb), _logits(model, emb))
    trainable = {n for n, p in loaded.named_parameters() if p.requires_grad}
    assert trainable == _expected_trainable(tuning, [n for n, _ in loaded.named_parameters()])


def test_unknown_kind_and_tuning_refused():
    with pytest.raises(UnknownNameError, match="hypothesis.*prefix_lm"):
        build_inverter("vec2text", EMBEDDER_NAME, EMBED_DIM)
    with pytest.raises(InvertError, match="tuning must be one of"):
        tiny_inverter("prefix_lm", tuning="adapters")


# --- embedding checks at generation ------------------------------------------------------


@pytest.fixture(scope="module", params=["prefix_lm", "hypothesis"])
def untrained(request):
    return tiny_inverter(request.param)


def test_wrong_embedding_dim_names_expected_given_and_embedder(untrained):
    with pytest.raises(DimensionMismatchError) as err:
        untrained.generate_texts(torch.randn(2, EMBED_DIM + 1))
    message = str(err.value)
    assert f"dim {EMBED_DIM + 1}" in message
    assert f"expects {EMBED_DIM}" in message
    assert EMBEDDER_NAME in message


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_embedding_raises(untrained, bad):
    emb = fake_embeddings(3)
    emb[2, 5] = bad
    with pytest.raises(InvalidEmbeddingError, match=r"rows \[2\]"):
        untrained.generate_texts(emb)


# --- load_inverter failures --------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("saved")
    tiny_inverter("prefix_lm").save_pretrained(path)
    return path


def _copy(saved, tmp_path):
    import shutil

    return shutil.copytree(saved, tmp_path / "ckpt")


def test_load_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_inverter(tmp_path / "does-not-exist")


def test_load_foreign_config(tmp_path):
    from transformers import LlamaConfig

    LlamaConfig(**{k: v for k, v in TINY_LLAMA.items() if k != "model_type"}).save_pretrained(
        tmp_path
    )
    with pytest.raises(CheckpointError, match="'llama' model, not an invert inverter"):
        load_inverter(tmp_path)


def test_load_config_not_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_inverter(tmp_path)


def test_load_missing_weights(saved, tmp_path):
    ckpt = _copy(saved, tmp_path)
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_inverter(ckpt)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_load_corrupt_weights(saved, tmp_path, damage):
    ckpt = _copy(saved, tmp_path)
    weights = ckpt / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(
        b"\x00garbage, not safetensors" * 8 if damage == "garbage" else data[: len(data) // 2]
    )
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_inverter(ckpt)


def test_load_weights_of_another_architecture(saved, tmp_path):
    ckpt = _copy(saved, tmp_path)
    config = json.loads((ckpt / "config.json").read_text())
    config["num_prefix_tokens"] = 3  # projection output no longer fits the stored weights
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not match|corrupt"):
        load_inverter(ckpt)


# --- nearest neighbour -------------------------------------------------------------------


def test_nearest_neighbour_returns_training_text_for_its_embeddings():
    emb = fake_embeddings()
    nn = NearestNeighbourInverter(TEXTS, emb, embedder_name=EMBEDDER_NAME)
    assert nn.dim == EMBED_DIM
    assert nn.invert(emb) == TEXTS
    assert nn.invert(emb * 7.5) == TEXTS  # cosine: scale does not matter
    noisy = emb + 0.05 * torch.randn(emb.shape, generator=torch.Generator().manual_seed(1))
    assert nn.invert(noisy) == TEXTS


def test_nearest_neighbour_top_k():
    emb = fake_embeddings()
    nn = NearestNeighbourInverter(TEXTS, emb, embedder_name=EMBEDDER_NAME)
    top = nn.invert(emb, k=3)
    assert len(top) == len(TEXTS)
    sims = torch.nn.functional.normalize(emb, dim=-1) @ torch.nn.functional.normalize(emb, dim=-1).T
    for i, row in enumerate(top):
        assert len(row) == 3 and len(set(row)) == 3 and row[0] == TEXTS[i]
        expected = [TEXTS[j] for j in sims[i].argsort(descending=True)[:3].tolist()]
        assert row == expected
    assert nn.search(emb, k=100).shape == (len(TEXTS), len(TEXTS))  # k clamps to the index size


def test_nearest_neighbour_wrong_dim_names_index():
    nn = NearestNeighbourInverter(TEXTS, fake_embeddings(), embedder_name=EMBEDDER_NAME)
    with pytest.raises(
        DimensionMismatchError,
        match=f"dim 3 .*nearest-neighbour.*{EMBEDDER_NAME}.*expects {EMBED_DIM}",
    ):
        nn.invert(torch.randn(1, 3))


# --- the inverter as an edit proposer ----------------------------------------------------

CORRUPTED = CORRUPTED_TEXTS


def test_inverter_edit_proposals_contain_the_fix_of_a_wrong_word(trained):
    _, model, _ = trained
    proposer = InverterEditProposer(model, fake_embeddings(), num_edits=4)
    proposals = proposer(list(range(len(TEXTS))), CORRUPTED)
    assert proposer.calls == 1  # one batched forward pass for all eight texts
    assert proposer(list(range(len(TEXTS))), CORRUPTED) == proposals and proposer.calls == 1
    for text, corrupted, row in zip(TEXTS, CORRUPTED, proposals, strict=True):
        assert text in row, (corrupted, row)
        assert corrupted not in row and len(row) <= 2 * 4


def test_edit_search_recovers_memorized_texts_only_with_the_inverter_proposing(trained):
    _, model, _ = trained
    embedder = HashWordEmbedder(dim=256)  # word-overlap cosine: only the exact words score 1
    targets = embedder.encode(TEXTS)
    seeds = [[c] for c in CORRUPTED]
    no_words = [[] for _ in TEXTS]  # the seeds' own words: none of them is the missing word
    kwargs = dict(num_rounds=2, edits_per_round=4, seed=0)
    alone = edit_search(targets, embedder, seeds, no_words, **kwargs)
    proposer = InverterEditProposer(model, fake_embeddings(), num_edits=4)
    helped = edit_search(targets, embedder, seeds, no_words, proposer=proposer, **kwargs)
    assert helped.texts == TEXTS
    assert not set(alone.texts) & set(TEXTS)


def test_edit_proposer_refuses_models_without_token_logits_and_wrong_dims(trained):
    _, model, _ = trained
    with pytest.raises(DimensionMismatchError, match=str(EMBED_DIM)):
        InverterEditProposer(model, torch.randn(2, EMBED_DIM + 3))
    baseline = NearestNeighbourInverter(TEXTS, fake_embeddings(), EMBEDDER_NAME)
    with pytest.raises(InvertError, match="token_logits"):
        InverterEditProposer(baseline, fake_embeddings())
    with pytest.raises(InvertError, match="example indices"):
        InverterEditProposer(model, fake_embeddings())([0, 1], TEXTS[:1])


def test_inverter_places_the_missing_word_among_distractors(trained):
    _, model, _ = trained
    # Each example may use its own missing word or two other texts' words.
    missing = [set(t.split()) - set(c.split()) for t, c in zip(TEXTS, CORRUPTED, strict=True)]
    words = [sorted(m) + ["stars", "hills"] for m in missing]
    proposer = InverterEditProposer(
        model, fake_embeddings(), num_edits=1, words=words, token_edits=False
    )
    proposals = proposer(list(range(len(TEXTS))), CORRUPTED)
    for text, row in zip(TEXTS, proposals, strict=True):
        assert text in row and len(row) <= 2, row  # the single best placement is the fix


@pytest.mark.parametrize("kind", ["prefix_lm", "hypothesis"])
def test_a_fresh_inverter_starts_near_the_uniform_loss(kind):
    """Before training, each family predicts close to uniformly: loss ≈ ln(vocabulary size).

    An unscaled tied T5 head (transformers 5 with tie_word_embeddings=False) started at
    ~2.5x ln(V) on this tiny model and ~9x on a real one.
    """
    import math

    from helpers import TEXTS, fake_embeddings

    from invert.training.inversion_data import PairDataset, pair_collator

    model = tiny_inverter(kind)
    dataset = PairDataset(TEXTS, fake_embeddings())
    batch = pair_collator(model.tokenizer, 12)([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        loss = model(**batch).loss.item()
    assert abs(loss - math.log(len(model.tokenizer))) < 1.0
