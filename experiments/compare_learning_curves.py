"""Held-out learning curves of several training runs, against examples seen and CPU-minutes.

Reads each run folder's history.json (validation metrics every train.eval_every steps) and
resolved config, and writes curves_by_examples.png, curves_by_minutes.png and curves.json
into --out (issue #17: which recipe learns fastest per example and per minute).

    python experiments/compare_learning_curves.py --out outputs/curves \
        prefix=outputs/train_inverter/<run a> hints=outputs/train_inverter/<run b>
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from invert.reporting.plots import plot_runs
from invert.reporting.tracking import save_json

METRICS = ("eval/token_f1", "eval/cosine", "eval/bleu")


def run_curves(run_dir: Path) -> dict[str, dict[str, list[float]]]:
    """``{metric: {"examples": [...], "minutes": [...], "values": [...]}}`` of one run."""
    import yaml

    history = json.loads((run_dir / "history.json").read_text())
    cfg = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    per_step = cfg["train"]["batch_size"] * cfg["train"].get("grad_accum_steps", 1)
    # Wall time at each logged training step; an eval point takes the last one before it.
    clock = sorted((h["step"], h["train/elapsed_s"]) for h in history if "train/elapsed_s" in h)
    out: dict[str, dict[str, list[float]]] = {}
    for metric in METRICS:
        points = [(h["step"], h[metric]) for h in history if metric in h and h[metric] is not None]
        out[metric] = {
            "examples": [step * per_step for step, _ in points],
            "minutes": [max([s for t, s in clock if t <= step] or [0.0]) / 60 for step, _ in points],
            "values": [value for _, value in points],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="label=run_folder pairs")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    runs = dict(item.split("=", 1) for item in args.runs)
    curves = {label: run_curves(Path(folder)) for label, folder in runs.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    for x, label in (("examples", "training examples seen"), ("minutes", "training minutes")):
        plot_runs({run: {m: (c[x], c["values"]) for m, c in per.items()} for run, per in curves.items()},
                  args.out / f"curves_by_{x}.png", label, "held-out validation (32 sentences)")  # fmt: skip
    save_json(args.out / "curves.json", curves)
    print(json.dumps({run: {m: list(zip(c["examples"], c["values"], strict=True)) for m, c in per.items()}
                      for run, per in curves.items()}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
