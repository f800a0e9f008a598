"""The ``invert`` command: ``invert <subcommand> [hydra overrides...]`` runs an experiment script.

Each subcommand runs one script of the repository's ``experiments/`` folder exactly as
``python experiments/<script>.py ARGS...`` would, so Hydra finds ``conf/`` beside it:

    invert train experiment=tiny logger=none
    invert evaluate inverter_path=outputs/config/<run>/inverter data=bbc_news
    invert bench --tuning full --train-steps 5

The scripts are not part of the installed package: the command needs the checkout that
``pip install -e .`` installed from (a wheel install has no ``experiments/``).
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

import invert

# subcommand -> (script in experiments/, one-line description)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train_inverter.py", "train an embedding inverter and evaluate it beside retrieval"),
    "evaluate": ("evaluate_inverter.py", "evaluate a saved inverter on any corpus split"),
    "table": ("inversion_table.py", "the inversion results table: every method, in and out of domain"),
    "correct": ("correct_inverter.py", "train a vec2text corrector for a saved inverter"),
    "capacity": ("memorization_capacity.py", "capacity probe: how many bits a GPT memorizes"),
    "scaling": ("memorization_scaling.py", "membership and test loss as data outgrows capacity"),
    "memorization-audit": (
        "memorization_audit.py", "exposure, extraction, membership inference, unintended bits",
    ),
    "privacy-audit": ("privacy_audit.py", "privacy audit of a vector store (report.html)"),
    "inverter-membership": (
        "inverter_membership.py", "membership inference against a saved embedding inverter",
    ),
    "bench": ("bench_inverter.py", "throughput and quick-start metrics, as JSON (argparse flags)"),
    "build-pii-store": ("build_pii_store.py", "fill a Chroma store with synthetic private notes"),
}  # fmt: skip


def experiments_dir() -> Path:
    """The repository's ``experiments/`` folder, found next to the ``invert`` package.

    Raises:
        FileNotFoundError: The folder is absent (e.g. invert was installed from a wheel);
            the message names the path that was looked at.
    """
    folder = Path(invert.__file__).resolve().parents[1] / "experiments"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"the `invert` command runs the scripts in the repository's experiments/ folder, "
            f"but {folder} does not exist; install from a checkout (`pip install -e .` in the "
            f"repository) or run `python experiments/<script>.py` there"
        )
    return folder


def usage() -> str:
    """The help text: the command line and one line per subcommand."""
    width = max(map(len, SUBCOMMANDS))
    rows = [f"  {name:<{width}}  {desc}" for name, (_, desc) in SUBCOMMANDS.items()]
    return "\n".join([
        "usage: invert <subcommand> [hydra overrides...]",
        "",
        "subcommands:",
        *rows,
        "",
        "`invert <subcommand> --help` shows that script's own options (Hydra's, for most).",
    ])  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Runs ``invert <subcommand> ARGS...``: the subcommand's script with ``ARGS`` as its argv.

    Args:
        argv: The arguments after ``invert``; None reads ``sys.argv[1:]``.

    Raises:
        SystemExit: 0 after printing the help (no subcommand, ``-h``, ``--help``); 2 for an
            unknown subcommand or a missing experiments/ folder; otherwise whatever the
            script exits with.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        raise SystemExit(0)
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        known = ", ".join(SUBCOMMANDS)
        print(f"invert: unknown subcommand {name!r}; known: {known}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
    try:
        script = experiments_dir() / SUBCOMMANDS[name][0]
    except FileNotFoundError as err:
        print(f"invert: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [str(script), *rest]
    sys.path.insert(0, str(script.parent))  # as `python experiments/<script>.py` would
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path


if __name__ == "__main__":
    main()
