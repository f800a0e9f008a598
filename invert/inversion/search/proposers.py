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


class RoundSchedule:
    """Which rounds of a search ask its periodic proposer, and which rounds a time cap affords.

    The periodic proposer (an expensive one: the inverter's edits cost a forward pass of the LM
    per text) is asked on rounds ``every``, ``2 x every``, ...; the cheap random edits get the
    rounds between, so at a fixed time the search runs more rounds. With ``last`` it is also asked
    on the search's last round, so the search ends on its fluent edits rather than on random
    ones: round ``num_rounds``, or under a time cap, once a proposer round has been timed, the
    last round the cap affords: a cheap round runs only while a proposer round still fits after
    it; otherwise the round is a proposer round, if that fits, and the search ends with it.
    Each round is judged by the last round of its own kind (by the last round of either kind
    until one of its kind has run), so a cheap round is not judged by an expensive one.

    Args:
        num_rounds: Rounds at most.
        every: The period (1: every round asks the proposer).
        last: Also ask it on the last round.
        max_seconds: The time cap (None: all ``num_rounds`` rounds run).

    Raises:
        InvertError: ``every`` < 1.
    """

    def __init__(self, num_rounds: int, every: int = 1, last: bool = False, max_seconds: float | None = None) -> None:
        if every < 1:
            raise InvertError(f"need every >= 1 (the periodic proposer's period), got {every}")
        self.num_rounds, self.every, self.last, self.max_seconds = num_rounds, every, last, max_seconds
        self._seconds: dict[bool, float] = {}  # the last round's wall time, by kind
        self._latest: float | None = None
        self._ended = False

    def next_round(self, number: int, elapsed: float) -> bool | None:
        """Whether round ``number`` (from 1) asks the periodic proposer; None: the search stops.

        Args:
            number: The round about to start.
            elapsed: Seconds the search has run so far.
        """
        if self._ended or number > self.num_rounds:
            return None
        periodic = number % self.every == 0 or (self.last and number == self.num_rounds)
        if self.max_seconds is None or self._latest is None:
            return periodic
        left = self.max_seconds - elapsed
        expected = self._seconds.get(periodic, self._latest)
        if self.last and not periodic and True in self._seconds and left < expected + self._seconds[True]:
            # No proposer round would fit after this cheap one: end on a proposer round now.
            self._ended = True
            return True if left >= self._seconds[True] else None
        return periodic if left >= expected else None

    def round_took(self, periodic: bool, seconds: float) -> None:
        """Records how long a round of this kind took."""
        self._seconds[periodic] = self._latest = seconds
