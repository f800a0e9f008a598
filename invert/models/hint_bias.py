"""A pull toward the hinted words while the prefix LM decodes.

The LM reads its word hints (:mod:`invert.models.token_bag`) as input, yet a briefly trained LM
still writes fluent text about something else. This logits processor adds, at every decoding
step, ``strength * log(p / floor)`` to each hint-vocabulary token whose hint-head probability
``p`` is above ``floor``, until that token has been written once; the LM's own distribution
still decides the order and the glue words. It is the decoding-time form of the word prior in
the bag-of-words search (Song & Raghunathan 2020, arXiv 2004.00053: the words an embedding
gives away) and of the constrained-decoding coverage bonus of Hokamp & Liu 2017 (arXiv
1704.07138), soft rather than forced, because the head's bag is wrong in about half its words.
"""

from __future__ import annotations

import torch

from invert.errors import InvertError


class HintCoverageBias:
    """Logits processor: a bonus for likely hint tokens not yet written.

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
        self.bias = bonus.new_zeros(len(probabilities), vocab_size)
        self.bias[:, token_ids.to(bonus.device)] = bonus

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """``scores`` (``[rows, vocab]``; rows are texts × beams or samples) plus the bonus
        of each token ``input_ids`` (what each row has written so far) does not hold yet."""
        bias = self.bias.to(scores.device)
        if len(scores) != len(bias):  # generate expands each text into beams or samples
            bias = bias.repeat_interleave(len(scores) // len(bias), dim=0)
        if input_ids.shape[-1]:
            bias = bias.scatter(1, input_ids, 0.0)
        return scores + bias.to(scores.dtype)


def set_hint_bias(inverter: torch.nn.Module, strength: float) -> None:
    """Sets a prefix LM's decoding pull toward its hinted tokens (see :class:`HintCoverageBias`).

    Raises:
        InvertError: ``strength`` is negative, or above 0 for an inverter that reads no hints.
    """
    if strength < 0:
        raise InvertError(f"hint_bias must be >= 0, got {strength}")
    if strength > 0 and getattr(inverter, "hint_head", None) is None:
        raise InvertError(
            f"hint_bias={strength} needs an inverter that reads word hints (a prefix LM trained "
            f"with model.hint_tokens > 0); {type(inverter).__name__} reads none"
        )
    inverter.config.hint_bias = strength
