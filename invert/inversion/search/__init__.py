"""Searches over texts with the real embedder in the loop.

The edit search (:mod:`edit_search`) keeps whichever edit embeds closer to the target; its
proposers are the embedder's own gradient (:mod:`embedder_edits`, HotFlip) and the trained
inverter (:mod:`inverter_edits`), pooled and scheduled by :mod:`proposers`. :mod:`zero_shot`
searches with a pretrained LM alone. All score candidates with
:class:`~invert.inversion.search.scorer.CosineScorer`.
"""

from invert.inversion.search.edit_search import edit_search, guided_search
from invert.inversion.search.embedder_edits import EmbedderGradientProposer
from invert.inversion.search.inverter_edits import InverterEditProposer
from invert.inversion.search.proposers import RoundSchedule, combine_proposers
from invert.inversion.search.scorer import CosineScorer
from invert.inversion.search.zero_shot import zero_shot_invert

__all__ = [
    "CosineScorer",
    "EmbedderGradientProposer",
    "InverterEditProposer",
    "RoundSchedule",
    "combine_proposers",
    "edit_search",
    "guided_search",
    "zero_shot_invert",
]
