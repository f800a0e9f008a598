"""invert: measure what models remember — embedding inversion and memorization probes.

Importing invert turns the Hugging Face hub off unless the user opted in
(``INVERT_ALLOW_HUB=1``): offline, a hub lookup hangs ~75 s before failing.
"""

from invert.env import configure_offline_defaults

configure_offline_defaults()

from invert.api import invert_embeddings, invert_strings  # noqa: E402
from invert.embedders import Embedder, build_embedder  # noqa: E402
from invert.inversion.search.edit_search import edit_search  # noqa: E402
from invert.models import NearestNeighbourInverter, build_inverter, load_inverter  # noqa: E402

__all__ = [
    "Embedder",
    "NearestNeighbourInverter",
    "build_embedder",
    "build_inverter",
    "edit_search",
    "invert_embeddings",
    "invert_strings",
    "load_inverter",
]
__version__ = "0.1.0"
