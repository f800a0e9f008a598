"""A pull toward the hinted words (and the retrieved draft's) while the prefix LM decodes.

The LM reads its word hints (:mod:`invert.models.token_bag`) as input, yet a briefly trained LM
still writes fluent text about something else. This logits processor adds, at every decoding
step, ``strength * log(p / floor)`` to each hint-vocabulary token whose hint-head probability
``p`` is above ``floor``, until that token has been written once; the LM's own distribution
still decides the order and the glue words. It is the decoding-time form of the word prior in
the bag-of-words search (Song & Raghunathan 2020, arXiv 2004.00053: the words an embedding
gives away) and of the constrained-decoding coverage bonus of Hokamp & Liu 2017 (arXiv
1704.07138), soft rather than forced, because the head's bag is wrong in about half its words.

An inverter that reads a retrieved draft (:mod:`invert.models.retrieved_draft`) can also be
pulled toward the draft's tokens (:class:`DraftCopyBias`): a briefly trained LM drifts away from
the near miss it was given, and the pull is the decoding-time form of a copy mechanism (Gu et al.
2016, arXiv 1603.06393) over the retrieved text, as in retrieve-and-edit generation (Hashimoto
et al. 2018, arXiv 1812.01194). Where a token is both hinted and drafted it gets the larger bonus.
"""

from __future__ import annotations

import torch

from invert.errors import InvertError


class CoverageBias:
    """Logits processor: a per-text bonus for each token that text has not written yet.

    Args:
        bias: ``[n, vocab_size]`` nats added to each token's logit until it is written.
    """

    def __init__(self, bias: torch.Tensor) -> None:
        self.bias = bias

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """``scores`` (``[rows, vocab]``; rows are texts × beams or samples) plus the bonus
        of each token ``input_ids`` (what each row has written so far) does not hold yet."""
        bias = self.bias.to(scores.device)
        if len(scores) != len(bias):  # generate expands each text into beams or samples
            bias = bias.repeat_interleave(len(scores) // len(bias), dim=0)
        if input_ids.shape[-1]:
            bias = bias.scatter(1, input_ids, 0.0)
        return scores + bias.to(scores.dtype)

    def merged(self, other: CoverageBias) -> CoverageBias:
        """One processor with, per token, the larger of the two bonuses."""
        if self.bias.shape != other.bias.shape:
            raise InvertError(f"cannot merge biases of shapes {tuple(self.bias.shape)} and {tuple(other.bias.shape)}")
        return CoverageBias(torch.maximum(self.bias, other.bias.to(self.bias.device)))


class HintCoverageBias(CoverageBias):
    """A bonus for likely hint tokens not yet written.

    Args:
        token_ids: ``[V_h]`` LM token ids the hint head scores.
        probabilities: ``[n, V_h]`` the head's probability of each in each text.
        vocab_size: The LM's output width (its logits' last dimension).
        strength: Nats of bonus per nat of ``log(p / floor)`` (0: no bias).
        floor: Probabilities at or below it get no bonus.
    """

    def __init__(
        self,
        token_ids: torch.Tensor,
        probabilities: torch.Tensor,
        vocab_size: int,
        strength: float,
        floor: float = 0.05,
    ) -> None:
        if strength < 0 or not 0 < floor < 1:
            raise InvertError(f"need strength >= 0 and 0 < floor < 1, got {strength}, {floor}")
        bonus = strength * torch.log(probabilities.float().clamp_min(floor) / floor)
        bias = bonus.new_zeros(len(probabilities), vocab_size)
        bias[:, token_ids.to(bonus.device)] = bonus
        super().__init__(bias)


class DraftCopyBias(CoverageBias):
    """A bonus of ``strength`` nats for each token of a text's draft it has not written yet.

    Args:
        draft_ids: ``[n, draft_tokens]`` each text's draft token ids (padding included).
        vocab_size: The LM's output width.
        strength: Nats of bonus per draft token (0: no bias).
        ignore_ids: Ids that get no bonus (the padding separator, end of text).
    """

    def __init__(
        self, draft_ids: torch.Tensor, vocab_size: int, strength: float, ignore_ids: tuple[int, ...] = ()
    ) -> None:
        if strength < 0:
            raise InvertError(f"need strength >= 0, got {strength}")
        draft_ids = draft_ids.long()
        device = draft_ids.device
        bias = torch.zeros(len(draft_ids), vocab_size, device=device)
        keep = ~torch.isin(draft_ids, torch.tensor(sorted(ignore_ids), dtype=torch.long, device=device))
        rows = torch.arange(len(draft_ids), device=device).unsqueeze(1).expand_as(draft_ids)
        bias[rows[keep], draft_ids[keep]] = strength
        super().__init__(bias)


def set_hint_bias(inverter: torch.nn.Module, strength: float) -> None:
    """Sets a prefix LM's decoding pull toward its hinted tokens (see :class:`HintCoverageBias`).

    Raises:
        InvertError: ``strength`` is negative, or above 0 for an inverter that reads no hints.
    """
    _set_pull(inverter, "hint_bias", strength, "hint_head", "word hints (a prefix LM trained with model.hint_tokens > 0)")


def set_draft_bias(inverter: torch.nn.Module, strength: float) -> None:
    """Sets a prefix LM's decoding pull toward its retrieved draft's tokens (:class:`DraftCopyBias`).

    Raises:
        InvertError: ``strength`` is negative, or above 0 for an inverter that reads no drafts.
    """
    _set_pull(inverter, "draft_bias", strength, "draft_index",
              "retrieved drafts (a prefix LM trained with model.draft_tokens > 0)")  # fmt: skip


def _set_pull(inverter: torch.nn.Module, key: str, strength: float, part: str, reads: str) -> None:
    """Sets ``inverter.config.<key>``, refusing a negative pull or one toward what it lacks."""
    if strength < 0:
        raise InvertError(f"{key} must be >= 0, got {strength}")
    if strength > 0 and getattr(inverter, part, None) is None:
        raise InvertError(f"{key}={strength} needs an inverter that reads {reads}; "
                          f"{type(inverter).__name__} reads none")  # fmt: skip
    setattr(inverter.config, key, strength)
