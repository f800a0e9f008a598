"""Bag-of-words inversion baseline (Song & Raghunathan 2020, arXiv 2004.00053).

An MLP maps an embedding to one independent probability per vocabulary word (multi-label,
trained with binary cross-entropy); the predicted word set, joined by spaces, is the "text".
It recovers which words were there, never their order, so only token F1 is meaningful for it
(:func:`invert.inversion.metrics.token_f1` counts the same lowercase ``\\w+`` words it predicts).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from invert.data.text import word_tokens
from invert.embedders.base import check_embeddings
from invert.errors import CheckpointError, InvertError
from invert.models.multilabel import fit_multilabel

REPEATS = 3  # repeat counts tracked per word: 2, 3 and 4 or more occurrences


class BagOfWordsInverter(nn.Module):
    """Embedding → multi-label distribution over a word vocabulary.

    Args:
        vocabulary: The words it can predict (built by :meth:`fit` from the training texts).
        embedding_dim: Dimension of the embeddings.
        hidden_dim: Hidden width of the MLP.
        embedder_name: Which embedder made the embeddings (for error messages).
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        embedding_dim: int,
        hidden_dim: int = 512,
        embedder_name: str = "",
    ) -> None:
        super().__init__()
        if not vocabulary:
            raise InvertError("empty vocabulary: the training texts hold no words")
        self.vocabulary, self.embedder_name = list(vocabulary), embedder_name
        self.embedding_dim, self.hidden_dim = embedding_dim, hidden_dim
        self.index = {w: i for i, w in enumerate(self.vocabulary)}
        self.mlp = nn.Sequential(
            nn.Linear(embedding_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, len(self.vocabulary)),
        )
        # P(a text holds a word >= k times | it holds it), k = 2..REPEATS+1, counted by fit():
        # the model predicts presence only, while token F1 counts repeats ("the" ... "the").
        self.register_buffer("repeat_rates", torch.zeros(len(self.vocabulary), REPEATS))

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        embedding_dim: int,
        hidden_dim: int = 512,
        max_vocabulary: int = 20_000,
        embedder_name: str = "",
        seed: int = 0,
    ) -> BagOfWordsInverter:
        """An untrained model whose vocabulary is the ``max_vocabulary`` commonest words."""
        counts = Counter(w for t in texts for w in set(word_tokens(t)))
        vocabulary = [
            w for w, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0]))[:max_vocabulary]
        ]
        torch.manual_seed(seed)
        return cls(vocabulary, embedding_dim, hidden_dim, embedder_name)

    def targets(self, texts: Sequence[str]) -> torch.Tensor:
        """Multi-hot ``[n, |V|]`` word sets (out-of-vocabulary words are dropped)."""
        out = torch.zeros(len(texts), len(self.vocabulary))
        for row, text in enumerate(texts):
            cols = [self.index[w] for w in set(word_tokens(text)) if w in self.index]
            out[row, cols] = 1.0
        return out

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits ``[n, |V|]`` from unit-normalized embeddings (embedders differ in scale)."""
        x = nn.functional.normalize(embeddings.float(), dim=-1) * embeddings.shape[-1] ** 0.5
        return self.mlp(x)

    def fit(
        self,
        texts: Sequence[str],
        embeddings: torch.Tensor,
        epochs: int = 50,
        batch_size: int = 256,
        lr: float = 1e-3,
        seed: int = 0,
        mixed_precision: str = "no",
    ) -> list[float]:
        """Trains with BCE (Adam, seeded shuffles); returns the mean loss per epoch.
        ``mixed_precision``: as :func:`~invert.models.multilabel.fit_multilabel`'s."""
        emb = check_embeddings(embeddings, self.embedding_dim, self._source())
        labels = self.targets(texts)
        self.repeat_rates.copy_(self._repeat_rates(texts))
        return fit_multilabel(self, emb, labels, epochs, batch_size, lr, seed, mixed_precision)

    def _repeat_rates(self, texts: Sequence[str]) -> torch.Tensor:
        present, at_least = torch.zeros(len(self.vocabulary)), torch.zeros(len(self.vocabulary), REPEATS)
        for text in texts:
            for word, count in Counter(word_tokens(text)).items():
                if (col := self.index.get(word)) is not None:
                    present[col] += 1
                    at_least[col, : min(count - 1, REPEATS)] += 1
        return at_least / present.clamp(min=1).unsqueeze(1)

    @torch.no_grad()
    def probabilities(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``[n, |V|]`` probability that each vocabulary word is in each embedded text."""
        emb = check_embeddings(embeddings, self.embedding_dim, self._source())
        return torch.sigmoid(self(emb.to(next(self.parameters()).device))).cpu()

    def top_words(self, embeddings: torch.Tensor, top_k: int) -> tuple[list[list[str]], list[list[float]]]:
        """Each embedding's ``top_k`` likeliest words, likeliest first, with their probabilities."""
        probs = self.probabilities(embeddings)
        top = probs.topk(min(top_k, probs.shape[1]), dim=1)
        words = [[self.vocabulary[c] for c in row] for row in top.indices.tolist()]
        return words, top.values.tolist()

    def predict_words(
        self, embeddings: torch.Tensor, threshold: float = 0.5, top_k: int | None = None
    ) -> list[list[str]]:
        """Predicted word sets: probability above ``threshold``, or the ``top_k`` most likely."""
        if top_k is not None:
            return self.top_words(embeddings, top_k)[0]
        probs = self.probabilities(embeddings)
        cols = [(row > threshold).nonzero().flatten().tolist() for row in probs]
        return [[self.vocabulary[c] for c in row] for row in cols]

    def generate_texts(
        self, embeddings: torch.Tensor, threshold: float = 0.5, top_k: int | None = None
    ) -> list[str]:
        """Predicted words joined by spaces, one string per embedding (for ``token_f1``)."""
        return [" ".join(words) for words in self.predict_words(embeddings, threshold, top_k)]

    def _source(self) -> str:
        return f"the bag-of-words model (trained on {self.embedder_name or 'unknown embedder'})"

    def save(self, path: str | Path) -> None:
        """Writes weights and vocabulary to one safetensors file."""
        import json

        from safetensors.torch import save_model

        meta = {
            "vocabulary": json.dumps(self.vocabulary),
            "embedding_dim": str(self.embedding_dim),
            "hidden_dim": str(self.hidden_dim),
            "embedder_name": self.embedder_name,
        }
        save_model(self, str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> BagOfWordsInverter:
        """Reads a file written by :meth:`save`."""
        import json

        from safetensors import safe_open
        from safetensors.torch import load_model

        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
            model = cls(
                json.loads(meta["vocabulary"]),
                int(meta["embedding_dim"]),
                int(meta["hidden_dim"]),
                meta.get("embedder_name", ""),
            )
            # Files saved before repeat rates were counted load with rates of 0 (no repeats).
            missing, unexpected = load_model(model, str(path), strict=False)
            if unexpected or set(missing) - {"repeat_rates"}:
                raise CheckpointError(f"missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        except Exception as err:  # missing keys, corrupt file, foreign file
            raise CheckpointError(f"{path} is not a bag-of-words checkpoint: {err}") from err
        return model.eval()
