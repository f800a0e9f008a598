"""How a search's edit proposers are put together: pooled, and asked on some rounds only.

A proposer maps (example indices, their current texts) to edited texts per text (e.g.
:class:`~invert.inversion.search.inverter_edits.InverterEditProposer`); the edit search asks
its proposer once per round (:func:`invert.inversion.search.edit_search.edit_search`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from invert.errors import InvertError

# (example indices, their current texts) -> edited texts per text; e.g. InverterEditProposer.
Proposer = Callable[[Sequence[int], Sequence[str]], list[list[str]]]


def combine_proposers(*proposers: Proposer | None) -> Proposer | None:
    """One proposer that asks each given one and pools their edits (None if none given)."""
    given = [p for p in proposers if p is not None]
    if len(given) < 2:
        return given[0] if given else None

    def propose(examples: Sequence[int], texts: Sequence[str]) -> list[list[str]]:
        answers = [p(examples, texts) for p in given]
        return [[edit for edits in per_text for edit in edits] for per_text in zip(*answers, strict=True)]

    return propose


def every_nth_round(proposer: Proposer, every: int) -> Proposer:
    """``proposer`` asked on rounds ``every``, ``2 x every``, ... only (1: every round); on the
    others it proposes nothing. An expensive proposer (a forward pass of the inverter per text)
    then costs a fraction of its rounds, and the cheap random edits get the rounds between.

    Raises:
        InvertError: ``every`` < 1.
    """
    if every < 1:
        raise InvertError(f"need every >= 1, got {every}")
    if every == 1:
        return proposer
    calls = 0

    def propose(examples: Sequence[int], texts: Sequence[str]) -> list[list[str]]:
        nonlocal calls
        calls += 1
        return proposer(examples, texts) if calls % every == 0 else [[] for _ in texts]

    return propose
