"""Two CPU processes (gloo) launched with torchrun: the ranks end with the same trained weights,
and only the main process writes the model.

torchrun rather than ``accelerate launch --cpu --num_processes 2``: with ``--cpu`` accelerate's
launcher silently starts a single process (multi-CPU there means MPI). Under torchrun the ranks
form a gloo process group because the Trainer passes cpu=True to Accelerate on CPU-only machines.
``accelerate launch --num_processes 2`` without ``--multi_gpu`` also starts one process on a
machine with no GPU; ``accelerate launch --multi_gpu --num_processes 2`` hands over to torchrun
and does start two CPU ranks (tested below).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

# torchrun and accelerate launch subprocesses: the second tier, which CI also runs.
pytestmark = pytest.mark.slow

TESTS_DIR = Path(__file__).resolve().parent

WORKER = textwrap.dedent(
    """
    import hashlib, json, sys
    from pathlib import Path

    out, tests_dir, max_steps = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    sys.path.insert(0, tests_dir)
    import torch

    torch.set_num_threads(1)
    from helpers import make_trainer, tiny_inverter

    def digest(model):
        h = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    model = tiny_inverter("prefix_lm", projection_dropout=0.1)
    initial = digest(model)
    first_batches = []

    def record(module, args, kwargs):
        if not first_batches:
            first_batches.append(kwargs["embeddings"].sum().item())

    model.register_forward_pre_hook(record, with_kwargs=True)
    trainer = make_trainer(model, out / "run", max_steps=max_steps, batch_size=2, lr=3e-3, log_every=5)
    acc = trainer.accelerator
    result = trainer.train()
    trainer.save_model(out / f"model-rank{acc.process_index}")
    (out / f"rank{acc.process_index}.txt").write_text(json.dumps({
        "world": acc.num_processes,
        "distributed_type": str(acc.distributed_type),
        "backend": str(acc.state.backend),
        "initial": initial,
        "final": digest(acc.unwrap_model(trainer.model)),
        "steps": result.steps,
        "first_batch": first_batches[0],
    }))
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch_env(out: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "HF_HOME": str(out / "hf-home"),  # no user accelerate config leaks in
        "PYTHONPATH": str(TESTS_DIR.parent),
    }


def _torchrun(out: Path, max_steps: int, use_cpu_flag: bool) -> float:
    """Runs the worker on 2 local processes; returns the wall time."""
    script = out / "worker.py"
    script.write_text(WORKER)
    env = _launch_env(out)
    env.pop("ACCELERATE_USE_CPU", None)
    if use_cpu_flag:
        env["ACCELERATE_USE_CPU"] = "1"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        str(script), str(out), str(TESTS_DIR), str(max_steps),
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=out)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return time.perf_counter() - start


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    seconds = _torchrun(out, max_steps=10, use_cpu_flag=True)
    ranks = [json.loads((out / f"rank{r}.txt").read_text()) for r in range(2)]
    return out, ranks, seconds


def test_both_ranks_run_in_one_gloo_group(two_rank_run):
    _, ranks, seconds = two_rank_run
    for rank in ranks:
        assert rank["world"] == 2 and rank["steps"] == 10
        assert "MULTI_CPU" in rank["distributed_type"] and rank["backend"] == "gloo"
    assert ranks[0]["first_batch"] != ranks[1]["first_batch"]  # each rank trained on its shard


def test_ranks_end_with_identical_trained_weights(two_rank_run):
    _, ranks, _ = two_rank_run
    assert ranks[0]["initial"] == ranks[1]["initial"]
    assert ranks[0]["final"] == ranks[1]["final"]
    assert ranks[0]["final"] != ranks[0]["initial"]


def test_only_the_main_process_saves_the_model(two_rank_run):
    out, _, _ = two_rank_run
    assert (out / "model-rank0" / "model.safetensors").is_file()
    assert (out / "model-rank0" / "config.json").is_file()
    assert not (out / "model-rank1").exists()
    assert (out / "run" / "history.json").is_file()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the bug is about CPU-only machines")
def test_plain_torchrun_on_cpu_forms_a_process_group(tmp_path):
    _torchrun(tmp_path, max_steps=1, use_cpu_flag=False)
    rank0 = json.loads((tmp_path / "rank0.txt").read_text())
    assert rank0["world"] == 2, rank0


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="about CPU-only machines")
def test_accelerate_launch_multi_gpu_starts_two_cpu_ranks(tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` is accelerate's route to 2 CPU ranks."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = _launch_env(tmp_path)
    env.pop("ACCELERATE_USE_CPU", None)
    accelerate = Path(sys.executable).parent / "accelerate"
    command = [
        str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        str(script), str(tmp_path), str(TESTS_DIR), "2",
    ]  # fmt: skip
    proc = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.txt").read_text()) for r in range(2)]
    for rank in ranks:
        assert rank["world"] == 2 and "MULTI_CPU" in rank["distributed_type"], rank
    assert ranks[0]["final"] == ranks[1]["final"]


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="about CPU-only machines")
def test_train_script_under_torchrun_trains_on_two_ranks(tmp_path):
    """The experiment itself, not only the Trainer: 2 ranks see twice the examples of one."""
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        str(TESTS_DIR.parent / "experiments" / "train_inverter.py"), "experiment=tiny",
        "logger=none", "eval.num_examples=2", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    env = {**_launch_env(tmp_path), "INVERT_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("ACCELERATE_USE_CPU", None)
    proc = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    train = json.loads((run_dir / "results.json").read_text())["train"]
    assert train["examples_seen"] == 2 * 20 * 16, train  # ranks x tiny's max_steps x batch_size
    assert proc.stdout.count("held-out metrics") == 1  # only rank 0 evaluates and reports
