"""The ``harmonic-nas`` command line: a thin layer over the Python API.

Every user-facing problem is a :class:`~harmonic_nas.errors.HarmonicError`; :func:`main` prints it
on one line and exits with code 2, without a traceback. Ctrl-C prints one line and exits with 130.

Start-up is light: the command modules import torch, optuna and the rest inside their command
functions, so ``--help``, ``--version`` and shell completion answer at once. Settings that concern
those libraries (torch's thread count, optuna's log level) are applied when they are first
imported (:func:`after_import`).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import re
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

import typer
from rich.markup import escape
from typer._click.exceptions import ClickException, UsageError  # typer vendors click

from harmonic_nas import __version__
from harmonic_nas.cli import data, fusion, hardware, pretrain, results, run, search
from harmonic_nas.cli._common import err_console, output
from harmonic_nas.errors import HarmonicError

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
INTERRUPTED = "interrupted (Ctrl-C); finished work is kept: rerun the same command to resume"

app = typer.Typer(
    name="harmonic-nas",
    help="Hardware-aware multimodal neural architecture search.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"harmonic-nas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(
        0,
        "--verbose",
        "-v",
        count=True,
        help="more output: -v library progress logs (INFO), -vv debug logs",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="only results and errors: no progress, no warnings"
    ),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="print the version and exit",
    ),
) -> None:
    """Hardware-aware multimodal neural architecture search (Harmonic-NAS and beyond)."""
    output.verbose, output.quiet = verbose, quiet
    if quiet or verbose:
        level = logging.ERROR if quiet else (logging.INFO if verbose == 1 else logging.DEBUG)
        _set_log_level(level)


for _module in (data, pretrain, hardware, fusion, search, results, run):
    _module.register(app)


# --------------------------------------------------------------------------- lazy library settings


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs callbacks right after a top-level module is first imported (then steps aside)."""

    def __init__(self) -> None:
        self.hooks: dict[str, list[Callable[[ModuleType], None]]] = {}
        self._finding: set[str] = set()

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.hooks or fullname in self._finding:
            return None
        self._finding.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        hooks = self.hooks.pop(fullname)
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_hook(module: ModuleType) -> None:
            exec_module(module)
            for hook in hooks:
                hook(module)

        setattr(loader, "exec_module", exec_then_hook)  # noqa: B010 - this loader instance only
        return spec


_after_import_finder = _AfterImport()


def after_import(name: str, hook: Callable[[ModuleType], None]) -> None:
    """Call ``hook(module)`` once the top-level module ``name`` is imported (now if it is)."""
    module = sys.modules.get(name)
    if module is not None:
        hook(module)
        return
    _after_import_finder.hooks.setdefault(name, []).append(hook)
    if _after_import_finder not in sys.meta_path:
        sys.meta_path.insert(0, _after_import_finder)


class _DropInterruptedTrials(logging.Filter):
    """Optuna logs a Ctrl-C in a trial as a failed trial with a long traceback: drop it (the
    CLI prints one line) and its companion "failed with value None" record."""

    def __init__(self) -> None:
        super().__init__()
        self._trials: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        msg = record.getMessage()
        if isinstance(exc, KeyboardInterrupt) or "KeyboardInterrupt" in msg:
            self._trials.add(msg.split(" failed", 1)[0])
            return False
        head = msg.split(" failed with value", 1)[0]
        return not (" failed with value" in msg and head in self._trials)


def _set_log_level(level: int) -> None:
    logging.getLogger().setLevel(level)
    # optuna's own handler ignores the root level: set its verbosity when it is imported
    after_import("optuna", lambda optuna: optuna.logging.set_verbosity(level))


def _configure(argv: Sequence[str] | None) -> None:
    from harmonic_nas.utils.env import log_level_from_env, threads_from_env

    level = log_level_from_env()
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt=LOG_DATE_FORMAT)
    _set_log_level(level)
    trials_logger = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _DropInterruptedTrials) for f in trials_logger.filters):
        trials_logger.addFilter(_DropInterruptedTrials())
    # The thread policy (harmonic_nas.utils.threads): the library's entry points apply it
    # themselves; here it also covers this process's commands that reach none of them.
    threads = threads_from_env()
    after_import("torch", lambda torch: torch.set_num_threads(threads))


def print_error(message: object) -> None:
    """``error: <message>`` on stderr; the message is escaped, so that square brackets in it
    (``[low, high]``, ``[0, 9]``) are printed, not read as Rich markup."""
    err_console.print(
        f"[red]error:[/red] {escape(str(message))}", highlight=False, soft_wrap=True, markup=True
    )


def usage_message(exc: UsageError) -> str:
    """A usage error (missing argument, unknown option, bad value) as one line with the fix."""
    text = " ".join(exc.format_message().split())
    text = re.sub(r"\.\s*Did you mean (.+)\?$", r" (did you mean \1?)", text).rstrip(".")
    text = text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text
    command = exc.ctx.command_path if exc.ctx is not None else "harmonic-nas"
    return f"{text}; run '{command} --help'"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 130 Ctrl-C, 1 unexpected failure)."""
    try:
        _configure(argv)
        code = app(args=argv, prog_name="harmonic-nas", standalone_mode=False)
        code = code if isinstance(code, int) else 0
        if code == 130:  # typer turns Ctrl-C in a command into exit code 130
            err_console.print(INTERRUPTED, highlight=False, soft_wrap=True)
        return code
    except HarmonicError as exc:
        print_error(exc)
        return exc.exit_code
    except UsageError as exc:  # typer/click: missing argument, unknown option, bad option value
        if exc.__class__.__name__ != "NoArgsIsHelpError":  # (its help is already printed)
            print_error(usage_message(exc))
        return 2
    except ClickException as exc:
        print_error(f"{' '.join(exc.format_message().split())}; run 'harmonic-nas --help'")
        return exc.exit_code
    except typer.Abort:  # end of input at a prompt
        print_error("aborted (end of input); rerun the command")
        return 1
    except SystemExit as exc:  # typer's own exits: --help, usage errors, typer.Exit, Ctrl-C
        code = exc.code
        code = code if isinstance(code, int) else (0 if code is None else 1)
        if code == 130:
            err_console.print(INTERRUPTED, highlight=False, soft_wrap=True)
        return code
    except KeyboardInterrupt:
        err_console.print(INTERRUPTED, highlight=False, soft_wrap=True)
        return 130
    except OSError as exc:  # disk full, name too long, ... where no reader or writer said it
        from harmonic_nas.utils.io import os_error

        print_error(os_error(exc))
        return 2
    except Exception as exc:
        if not type(exc).__module__.startswith("sqlalchemy."):
            raise
        print_error(storage_failure(exc))  # the study storage failed outside a wrapped call
        return 2
    return 0


def storage_failure(exc: Exception) -> str:
    """A failure of the study's database (disk full, read-only, server gone) as one line."""
    text = " ".join(str(exc).split()).split("[SQL:")[0].split("(Background on")[0].strip()
    return (
        f"the study storage failed ({exc.__class__.__name__}: {text[:160]}); free disk space "
        "or fix the storage, then rerun the same command to resume (completed work is kept)"
    )


if __name__ == "__main__":
    sys.exit(main())
