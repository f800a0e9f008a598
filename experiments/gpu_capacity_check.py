"""A short GPU check of the capacity probe on the paper's grid (V=2048, S=64), as JSON.

The full GPU grid (``capacity_probe=gpu``) trains each cell to saturation, hours per model.
This check fits a few minutes of one accelerator: the smallest paper model (80K parameters)
at N below and past its capacity, with a shorter convergence window, and reports bits per
parameter next to the paper's 3.9-4.2 for models of that size. Needs only torch,
transformers and accelerate (no Hydra, W&B or datasets), so it runs from a bare checkout:

    PYTHONPATH=. python experiments/gpu_capacity_check.py --out /tmp/gpu_capacity
    PYTHONPATH=. python experiments/gpu_capacity_check.py --smoke    # seconds, on CPU
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from invert.memorization.capacity import capacity_by_model, run_capacity_cell
from invert.memorization.capacity_plots import plot_memorized_vs_n

PAPER = {"vocab_size": 2048, "seq_len": 64,
         "model": {"n_layer": 1, "d_model": 32, "n_head": 4},
         "n_sequences": [256, 512, 1024, 2048]}  # fmt: skip
SMOKE = {"vocab_size": 64, "seq_len": 8,
         "model": {"n_layer": 1, "d_model": 8, "n_head": 1},
         "n_sequences": [8, 64]}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="outputs/gpu_capacity_check")
    parser.add_argument("--smoke", action="store_true", help="tiny grid, seconds on CPU")
    parser.add_argument("--cell-minutes", type=float, default=1.6)
    parser.add_argument("--precision", default="no", choices=["no", "bf16"])
    parser.add_argument("--n-sequences", type=int, nargs="+", help="N values (default: the grid's)")
    args = parser.parse_args(argv)
    grid = dict(SMOKE if args.smoke else PAPER)
    if args.n_sequences:
        grid["n_sequences"] = args.n_sequences
    out = Path(args.out)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    train = {"lr": 3e-3, "batch_size": 2048, "warmup_steps": 100, "log_every": 1000,
             "max_steps": 200 if args.smoke else 60000, "max_minutes": args.cell_minutes,
             "cooldown_fraction": 0.2}  # fmt: skip
    convergence = {"eval_every": 50 if args.smoke else 500,
                   "window_steps": 100 if args.smoke else 4000, "rel_tol": 0.005,
                   "min_steps": 100 if args.smoke else 6000}  # fmt: skip
    cells, start = [], time.perf_counter()
    for n in grid["n_sequences"]:
        cell = run_capacity_cell(
            grid["model"], n, grid["vocab_size"], grid["seq_len"], out / f"N{n}", train=train,
            convergence=convergence, mixed_precision=args.precision, score_batch_size=4096,
        )
        cell.pop("curve")
        cells.append(cell)
        keep = ("n_sequences", "memorized_bits", "memorized_fraction", "converged", "steps", "seconds")
        print(json.dumps({k: cell[k] for k in keep}), flush=True)
    model = capacity_by_model(cells)[0]
    result = {
        "device": device, "grid": grid, "train": train, "convergence": convergence,
        "precision": args.precision, "model": model, "cells": cells,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "steps_per_second": round(sum(c["steps"] for c in cells) / sum(c["seconds"] for c in cells), 1),
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_capacity_check.json").write_text(json.dumps(result, indent=2))
    plot_memorized_vs_n(cells, out / "memorized_vs_n.png", models=[model])
    print(json.dumps({k: result[k] for k in ("device", "model", "wall_seconds", "steps_per_second")}))
    return result


if __name__ == "__main__":
    sys.exit(main() and 0)
