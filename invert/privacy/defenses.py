"""Embedding defenses as :class:`Embedder` wrappers.

Each defense wraps the embedder that fills a vector store and transforms its output vectors;
``transform`` applies the same defense to vectors already in a store. Defenses studied:

- Gaussian noise (vec2text, Morris et al. 2023, arXiv:2310.06816, Sec. 8): ``v + λ·ε`` with
  ``ε ~ N(0, I)`` drawn per dimension, added to the embedder's output as is (MiniLM's output
  is unit-norm, so λ is relative to a unit vector) and not renormalized.
- int8 and binary quantization, dequantized back to floats so an inverter can read them.
- A secret random orthogonal transform ``v @ Q`` (Q from the QR of a seeded Gaussian matrix):
  cosines and dot products are unchanged, so retrieval is too, but a naive inverter sees a
  rotated space. ALGEN (Chen et al. 2025, arXiv:2502.11308) shows a linear map fitted on a
  few leaked (text, vector) pairs undoes such transforms; see
  :mod:`invert.privacy.alignment_attack`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from invert.embedders.base import Embedder, check_embeddings
from invert.errors import InvertError

QUANTIZATIONS = ("int8", "binary")


class DefendedEmbedder(Embedder):
    """Base class: ``encode`` is the wrapped embedder's ``encode`` followed by ``transform``."""

    def __init__(self, base: Embedder, tag: str) -> None:
        self.base = base
        self.name = f"{base.name}+{tag}"
        self.dim = base.dim

    def identity(self) -> dict[str, Any]:
        """The wrapped embedder's identity and the defense (with its secret's hash)."""
        secret = getattr(self, "matrix", None)
        digest = None if secret is None else hashlib.sha256(secret.numpy().tobytes()).hexdigest()
        return super().identity() | {"base": self.base.identity(), "secret_sha256": digest}

    def transform(self, vectors: torch.Tensor) -> torch.Tensor:
        """Applies the defense to ``[n, dim]`` vectors."""
        raise NotImplementedError

    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        return self.transform(self.base.encode(texts, batch_size, show_progress))


class NoisyEmbedder(DefendedEmbedder):
    """Adds ``λ·N(0, 1)`` to every dimension (vec2text's noise defense, arXiv:2310.06816).

    Args:
        base: The embedder to defend.
        level: λ, the noise standard deviation (0 changes nothing).
        seed: Seeds the noise generator once: successive ``encode`` calls draw fresh noise
            (the same text gets a different vector each call, as a deployment re-noising
            every request would) while the sequence of draws is reproducible.
    """

    def __init__(self, base: Embedder, level: float, seed: int | None = 0) -> None:
        super().__init__(base, f"noise{level:g}")
        if level < 0:
            raise InvertError(f"noise level must be >= 0, got {level}")
        self.level = float(level)
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def transform(self, vectors: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """Adds fresh noise; pass ``seed`` to fix this draw instead of advancing the generator."""
        vectors = check_embeddings(vectors, self.dim, f"the defense on {self.base.name}")
        if self.level == 0:
            return vectors.clone()
        gen = torch.Generator().manual_seed(seed) if seed is not None else self.generator
        return vectors + self.level * torch.randn(vectors.shape, generator=gen)


class QuantizedEmbedder(DefendedEmbedder):
    """Stores vectors as int8 or 1 bit per dimension, and dequantizes them for use.

    - ``int8``: symmetric per-vector scale ``s = max|v| / 127``, ``q = round(v / s)``,
      dequantized ``q·s``.
    - ``binary``: ``sign(v)`` (0 counts as +), dequantized to ``sign(v)·‖v‖/√dim`` so the
      vector keeps its norm; only the direction's orthant survives.

    Args:
        base: The embedder to defend.
        mode: ``int8`` or ``binary``.
    """

    def __init__(self, base: Embedder, mode: str = "int8") -> None:
        if mode not in QUANTIZATIONS:
            raise InvertError(f"quantization must be one of {QUANTIZATIONS}, got {mode!r}")
        super().__init__(base, mode)
        self.mode = mode

    def transform(self, vectors: torch.Tensor) -> torch.Tensor:
        vectors = check_embeddings(vectors, self.dim, f"the defense on {self.base.name}")
        if self.mode == "int8":
            scale = vectors.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
            return (vectors / scale).round().clamp(-127, 127) * scale
        signs = torch.where(vectors >= 0, 1.0, -1.0)
        return signs * vectors.norm(dim=1, keepdim=True) / self.dim**0.5


class OrthogonalEmbedder(DefendedEmbedder):
    """Multiplies by a secret random orthogonal matrix ``Q`` (QR of a seeded Gaussian matrix).

    Args:
        base: The embedder to defend.
        seed: The secret: the same seed gives the same ``Q``.
    """

    def __init__(self, base: Embedder, seed: int = 0) -> None:
        super().__init__(base, "orthogonal")
        gen = torch.Generator().manual_seed(seed)
        q, r = torch.linalg.qr(torch.randn(base.dim, base.dim, generator=gen, dtype=torch.float64))
        # Sign fix makes Q Haar-distributed rather than biased by QR's sign convention.
        self.matrix = (q * torch.sign(torch.diagonal(r))).to(torch.float32)

    def transform(self, vectors: torch.Tensor) -> torch.Tensor:
        vectors = check_embeddings(vectors, self.dim, f"the defense on {self.base.name}")
        return vectors @ self.matrix


def build_defense(base: Embedder, spec: str | dict, seed: int = 0) -> DefendedEmbedder:
    """Builds a defense from ``"int8"``, ``"binary"``, ``"orthogonal"`` or ``{"noise": λ}``.

    Raises:
        InvertError: The name is not a known defense.
    """
    if isinstance(spec, dict) and "noise" in spec:
        return NoisyEmbedder(base, float(spec["noise"]), seed=seed)
    if spec in QUANTIZATIONS:
        return QuantizedEmbedder(base, str(spec))
    if spec == "orthogonal":
        return OrthogonalEmbedder(base, seed=seed)
    raise InvertError(
        f"unknown defense {spec!r}; use int8, binary, orthogonal or {{noise: <level>}}"
    )
