"""The inversion results table: every method, in-domain and out-of-domain (Markdown + CSV + plot).

    python experiments/inversion_table.py inverters.lora=outputs/train_inverter/<run>/inverter \
        corrector_path=outputs/correct/<run>/corrector
"""

import hydra
from omegaconf import DictConfig, OmegaConf

import invert  # noqa: F401  (sets offline hub defaults before anything loads)
from invert.inversion.runs.table import run_inversion_table


@hydra.main(version_base="1.3", config_path="../conf", config_name="inversion_table")
def main(cfg: DictConfig) -> None:
    run_inversion_table(OmegaConf.to_container(cfg, resolve=True))


if __name__ == "__main__":
    main()
