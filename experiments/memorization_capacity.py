"""Capacity probe (Morris et al. 2025, arXiv:2505.24832): how many bits a GPT memorizes.

Trains every (model size, N) cell of ``conf/capacity_probe/<name>.yaml`` to convergence, writes
``capacity.json`` and two plots into the run folder, prints a JSON summary, returns bits/param.

    python experiments/memorization_capacity.py capacity_probe=cpu logger=wandb
    python experiments/memorization_capacity.py -m 'probe.n_sequences=[64],[256]' \
        'probe.model_sizes=[{n_layer:1,d_model:8,n_head:1}],[{n_layer:1,d_model:16,n_head:2}]'
"""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig, OmegaConf

from invert.env import configure_offline_defaults

configure_offline_defaults()

from invert.memorization.runs.capacity import run_capacity_experiment  # noqa: E402


@hydra.main(version_base=None, config_path="../conf", config_name="memorization_capacity")
def main(cfg: DictConfig) -> float | None:
    summary = run_capacity_experiment(OmegaConf.to_container(cfg, resolve=True))
    keys = ("bits_per_parameter", "fit", "models", "converged_cells", "wall_seconds", "cpu_seconds")
    print(json.dumps({k: summary[k] for k in (*keys, "plots")}, indent=1, default=str))
    return summary["bits_per_parameter"]


if __name__ == "__main__":
    main()
