"""Membership inference against a saved embedding inverter (its training vs held-out texts).

python experiments/inverter_membership.py inverter_path=outputs/train_inverter/<run>/inverter
"""

import hydra
from omegaconf import DictConfig, OmegaConf

import invert  # noqa: F401  (sets offline hub defaults before anything loads)
from invert.privacy.inverter_membership import run_inverter_membership


@hydra.main(version_base="1.3", config_path="../conf", config_name="inverter_membership")
def main(cfg: DictConfig) -> float:
    summary = run_inverter_membership(OmegaConf.to_container(cfg, resolve=True))
    return float(summary["best"]["auc"])


if __name__ == "__main__":
    main()
