"""Shared reporting: the rank-aware tracker (W&B or JSON), plots, and result tables."""

from invert.reporting.plots import save_figure
from invert.reporting.tracking import Tracker, build_tracker, save_json

__all__ = ["Tracker", "build_tracker", "save_figure", "save_json"]
