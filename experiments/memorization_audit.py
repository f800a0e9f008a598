"""Memorization audit: exposure, extraction, membership inference and unintended bits.

    python experiments/memorization_audit.py                          # tiny config, seconds
    python experiments/memorization_audit.py memorization_probe=smollm2      # full vs LoRA vs prefix
    python experiments/memorization_audit.py logger=none probe.train.max_steps=50

Writes memorization_audit.json, comparison.csv/.md and plots into the Hydra run folder and
returns the headline metric (the first regime's LOSS-attack AUC) for sweepers.
"""

import hydra
from omegaconf import DictConfig, OmegaConf

import invert  # noqa: F401  (sets offline hub defaults before anything loads)
from invert.memorization.runs.finetune_audit import run_memorization_audit


@hydra.main(version_base="1.3", config_path="../conf", config_name="memorization_audit")
def main(cfg: DictConfig) -> float:
    result = run_memorization_audit(OmegaConf.to_container(cfg, resolve=True))
    return float(result["headline"]["value"])  # the multirun / sweeper objective


if __name__ == "__main__":
    main()
