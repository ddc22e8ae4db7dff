"""The ``harmonic-nas`` command line: a thin layer over the Python API.

Every user-facing problem is a :class:`~harmonic_nas.errors.HarmonicError`; :func:`main` prints it
on one line and exits with code 2, without a traceback.
"""

from __future__ import annotations

import logging
import os
import sys

import torch
import typer

from harmonic_nas.cli import data, fusion, hardware, pretrain, results, run, search
from harmonic_nas.cli._common import err_console
from harmonic_nas.errors import HarmonicError

app = typer.Typer(
    name="harmonic-nas",
    help="Hardware-aware multimodal neural architecture search.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Hardware-aware multimodal neural architecture search (Harmonic-NAS and beyond)."""


for _module in (data, pretrain, hardware, fusion, search, results, run):
    _module.register(app)


def _quiet_optuna(level: str) -> None:
    import optuna

    optuna.logging.set_verbosity(getattr(logging, level, logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 1 unexpected failure)."""
    level = os.environ.get("HARMONIC_NAS_LOG", "WARNING").upper()
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    _quiet_optuna(level)
    # The networks searched here are small: at batch sizes of tens, intra-op threads cost more in
    # synchronisation than they gain (and thrash on a shared machine). Scale out with --workers.
    torch.set_num_threads(int(os.environ.get("HARMONIC_NAS_THREADS", "1")))
    try:
        app(args=argv, prog_name="harmonic-nas", standalone_mode=True)
    except HarmonicError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True, markup=True)
        return exc.exit_code
    except SystemExit as exc:  # typer's own exits: --help, usage errors, typer.Exit
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
