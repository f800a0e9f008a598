"""Benchmark: embedding, training and generation throughput + the quick start's metrics (JSON).

    python experiments/bench_inverter.py [--tuning lora|full|prefix] [--train-steps 5]
"""

import argparse
import json

import invert  # noqa: F401  (sets offline hub defaults before anything loads)
from invert.inversion.benchmark import run_inverter_benchmark

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tuning", default="lora", choices=["lora", "full", "prefix"])
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--num-texts", type=int, default=2000)
    parser.add_argument("--mixed-precision", default="bf16", choices=["bf16", "no"])
    args = parser.parse_args()
    report = run_inverter_benchmark(
        num_texts=args.num_texts, train_steps=args.train_steps,
        tuning=args.tuning, mixed_precision=args.mixed_precision,
    )
    print(json.dumps(report, indent=1, default=str))
