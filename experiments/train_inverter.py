"""Train an embedding inverter and evaluate it beside the nearest-neighbour baseline.

    python experiments/train_inverter.py experiment=quickstart
    python experiments/train_inverter.py -m experiment=tiny train.lr=1e-3,3e-3
    accelerate launch --num_processes 2 experiments/train_inverter.py hydra.run.dir=outputs/ddp
"""

import hydra
from omegaconf import DictConfig, OmegaConf

import invert  # noqa: F401  (sets offline hub defaults before anything loads)
from invert.inversion.runs.train import run_inversion_experiment


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    summary = run_inversion_experiment(OmegaConf.to_container(cfg, resolve=True))
    metrics = summary.get("metrics", {})
    best = metrics.get("inverter_rerank") or metrics.get("inverter") or {}
    return float(best.get("token_f1", 0.0))  # the multirun / sweeper objective


if __name__ == "__main__":
    main()
