"""Evaluate a saved inverter on any corpus split, beside the nearest-neighbour baseline.

    python experiments/evaluate_inverter.py inverter_path=outputs/train_inverter/<run>/inverter
    python experiments/evaluate_inverter.py inverter_path=... data=bbc_news   # another corpus
"""

import hydra
from omegaconf import DictConfig, OmegaConf

import invert  # noqa: F401  (sets offline hub defaults before anything loads)
from invert.inversion.runs.train import evaluate_saved_inverter


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    summary = evaluate_saved_inverter(OmegaConf.to_container(cfg, resolve=True))
    return float(summary["optimized_metric"])  # the multirun / sweeper objective


if __name__ == "__main__":
    main()
