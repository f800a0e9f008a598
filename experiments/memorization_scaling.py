"""Capacity scaling (Morris et al. 2025, arXiv:2505.24832): membership and test loss vs N.

Trains every (model size, N) cell of ``conf/scaling_probe/<name>.yaml`` from scratch, writes
``scaling.json``, ``table.md`` / ``table.csv`` and two plots into the run folder, prints the
table, returns the mean membership F1 at each model's largest dataset / capacity ratio.

    python experiments/memorization_scaling.py scaling_probe=cpu logger=none
    python experiments/memorization_scaling.py scaling_probe=text logger=wandb
"""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig, OmegaConf

from invert.env import configure_offline_defaults

configure_offline_defaults()

from invert.memorization.runs.scaling import run_scaling_experiment  # noqa: E402


@hydra.main(version_base=None, config_path="../conf", config_name="memorization_scaling")
def main(cfg: DictConfig) -> float:
    summary = run_scaling_experiment(OmegaConf.to_container(cfg, resolve=True))
    print(summary["files"]["markdown"].read_text())
    keys = ("f1_at_smallest_ratio", "f1_at_largest_ratio", "models", "wall_seconds", "plots")
    print(json.dumps({k: summary[k] for k in keys}, indent=1, default=str))
    return summary["f1_at_largest_ratio"]


if __name__ == "__main__":
    main()
