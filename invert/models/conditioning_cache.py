"""The LM's keys and values over each example's conditioning, computed once per example.

A prefix-LM inverter reads ``[prefix vectors; word hints; draft; separator]`` before the text
(:class:`~invert.models.prefix_lm.PrefixLMInverter.conditioning`): 41 positions in the quick
start's recipe, more than the text itself. An edit search asks the inverter for its token
logits over a new text of the same example every round
(:mod:`invert.inversion.search.inverter_edits`), and the conditioning never changes between
those calls. So its keys and values are computed once per example and every later pass runs
the text's positions alone: the same logits (up to float rounding) for a fraction of the work.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from transformers import DynamicCache

from invert.errors import InvertError


def cache_argument(lm: torch.nn.Module) -> str:
    """The name ``lm``'s forward takes earlier keys and values by: newer transformers take
    ``cache`` (``past_key_values`` is deprecated there), older ones only ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"


class ConditioningCache:
    """Token logits of texts after each example's conditioning, its keys and values cached.

    The inverter's weights must stay as they are while the cache lives (it holds their output).
    Memory grows with the examples asked about: per example, the LM's keys and values over
    ``num_input_vectors`` positions in every layer (about 1 MB for SmolLM2-135M in bf16).

    Args:
        inverter: A decoder-only prefix-LM inverter (``conditioning`` and ``lm``).
        embeddings: ``[n, dim]`` target embeddings (row i belongs to example i).
        batch_size: Examples per forward pass over the conditioning.
    """

    def __init__(
        self, inverter: torch.nn.Module, embeddings: torch.Tensor, batch_size: int = 32
    ) -> None:
        if not self.supports(inverter):
            raise InvertError(
                f"{type(inverter).__name__} has no decoder-only conditioning to cache"
            )
        if batch_size < 1:
            raise InvertError(f"batch_size must be >= 1, got {batch_size}")
        self.inverter, self.embeddings, self.batch_size = inverter, embeddings, batch_size
        self._argument = cache_argument(inverter.lm)
        # example -> (per layer (keys, values) [heads, k, head_dim], next-token logits [vocab])
        self._states: dict[int, tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]] = {}

    @staticmethod
    def supports(inverter: torch.nn.Module) -> bool:
        """Whether ``inverter`` reads a conditioning ahead of the text in one causal LM."""
        return hasattr(inverter, "conditioning") and hasattr(inverter, "lm") and \
            not getattr(inverter.lm.config, "is_encoder_decoder", False)  # fmt: skip

    def __len__(self) -> int:
        return len(self._states)

    @torch.no_grad()
    def token_logits(
        self, examples: Sequence[int], input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """``[b, L, vocab]``: row j is the logits for token j of text b given example
        ``examples[b]``'s conditioning and the tokens before j (as
        :meth:`~invert.models.prefix_lm.PrefixLMInverter.token_logits`).

        ``input_ids`` / ``attention_mask``: right-padded texts, one per example index.
        """
        examples = [int(i) for i in examples]
        if len(examples) != len(input_ids):
            raise InvertError(f"got {len(examples)} example indices for {len(input_ids)} texts")
        if not examples:
            raise InvertError("no texts to read: pass at least one example index and text")
        if self.inverter.training:  # dropout would stay in the cached states for good
            raise InvertError(
                "the conditioning cache needs the inverter in eval mode (inverter.eval())"
            )
        self._fill([i for i in dict.fromkeys(examples) if i not in self._states])
        states = [self._states[i] for i in examples]
        layers = len(states[0][0])
        cache = DynamicCache(ddp_cache_data=[
            (torch.stack([s[0][layer][0] for s in states]), torch.stack([s[0][layer][1] for s in states]))
            for layer in range(layers)
        ])  # fmt: skip
        device = states[0][1].device
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        past = attention_mask.new_ones(len(examples), cache.get_seq_length())
        out = self.inverter.lm(
            input_ids=input_ids, attention_mask=torch.cat([past, attention_mask], dim=1), **{self._argument: cache}
        )  # fmt: skip
        first = torch.stack([s[1] for s in states]).unsqueeze(1)
        return torch.cat([first.to(out.logits.dtype), out.logits[:, :-1]], dim=1)

    def _fill(self, missing: list[int]) -> None:
        """Runs the conditioning of the ``missing`` examples, a batch at a time."""
        lm = self.inverter.lm
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            device = lm.get_input_embeddings().weight.device
            conditioning = self.inverter.conditioning(self.embeddings[chunk].to(device))
            mask = torch.ones(conditioning.shape[:2], dtype=torch.long, device=conditioning.device)
            out = lm(
                inputs_embeds=conditioning, attention_mask=mask, use_cache=True, logits_to_keep=1
            )
            cached = out.cache if hasattr(out, "cache") else out.past_key_values
            layers = [(layer.keys, layer.values) for layer in cached.layers]
            for row, example in enumerate(chunk):
                kv = [(k[row].clone(), v[row].clone()) for k, v in layers]
                self._states[example] = (kv, out.logits[row, -1])
