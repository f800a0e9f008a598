"""Train an embedding inverter and evaluate it beside the nearest-neighbour baseline.

    python experiments/train_inverter.py experiment=quickstart
    python experiments/train_inverter.py -m experiment=tiny train.lr=1e-3,3e-3
    torchrun --nproc_per_node 2 experiments/train_inverter.py hydra.run.dir=outputs/ddp
    accelerate launch --multi_gpu --num_processes 2 experiments/train_inverter.py hydra.run.dir=outputs/ddp
(``--multi_gpu`` also on a CPU machine: without it accelerate starts one process there.)
"""

import hydra
from omegaconf import DictConfig, OmegaConf

import invert  # noqa: F401  (sets offline hub defaults before anything loads)
from invert.inversion.runs.train import run_inversion_experiment


@hydra.main(version_base="1.3", config_path="../conf", config_name="train_inverter")
def main(cfg: DictConfig) -> float:
    summary = run_inversion_experiment(OmegaConf.to_container(cfg, resolve=True))
    # The multirun / sweeper objective (`optimized_metric`); ranks other than 0 report none.
    return float(summary.get("optimized_metric", float("nan")))


if __name__ == "__main__":
    main()
