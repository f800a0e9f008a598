"""Evaluate a saved inverter on any corpus split, beside the nearest-neighbour baseline.

    python experiments/evaluate_inverter.py inverter_path=outputs/config/<run>/inverter
    python experiments/evaluate_inverter.py inverter_path=... data=bbc_news split=test
"""

import hydra
from omegaconf import DictConfig, OmegaConf

import invert  # noqa: F401  (sets offline hub defaults before anything loads)
from invert.inversion.runs.train import evaluate_saved_inverter


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    summary = evaluate_saved_inverter(OmegaConf.to_container(cfg, resolve=True))
    metrics = summary["metrics"]
    return float((metrics.get("inverter_rerank") or metrics["inverter"])["token_f1"])


if __name__ == "__main__":
    main()
