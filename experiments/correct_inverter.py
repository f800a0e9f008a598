"""Train a vec2text corrector for a saved inverter and evaluate 0/1/5/20 correction steps.

python experiments/correct_inverter.py inverter_path=outputs/train_inverter/<run>/inverter
python experiments/correct_inverter.py inverter_path=... correct.sequence_beam_width=8
"""

import hydra
from omegaconf import DictConfig, OmegaConf

import invert  # noqa: F401  (sets offline hub defaults before anything loads)
from invert.inversion.runs.correct import run_correction_experiment


@hydra.main(version_base="1.3", config_path="../conf", config_name="correct")
def main(cfg: DictConfig) -> float:
    summary = run_correction_experiment(OmegaConf.to_container(cfg, resolve=True))
    steps = max(cfg.correct.steps)
    return float(summary["metrics"][f"corrector_{steps}_steps"]["token_f1"])


if __name__ == "__main__":
    main()
