"""Weights vs activations: one private knowledge base in a RAG store and in the weights.

    python experiments/weights_vs_activations.py                 # SmolLM2, MiniLM, 200 people
    python experiments/weights_vs_activations.py wva=tiny logger=none
"""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig, OmegaConf

from invert.env import configure_offline_defaults

configure_offline_defaults()

from invert.privacy.weights_vs_activations import run_weights_vs_activations  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="weights_vs_activations")
def main(cfg: DictConfig) -> dict:
    out = run_weights_vs_activations(OmegaConf.to_container(cfg, resolve=True))
    print(json.dumps({"table": out["table"], "files": out["files"]}, indent=1, default=str))
    return out["table"]


if __name__ == "__main__":
    main()
