"""CLI commands of the search stage: ``search``, ``baselines``, ``status``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from harmonic_nas.cli._common import (
    best_line,
    console,
    load_cfg,
    objectives_line,
    override_option,
    preflight,
    print_json,
    rich_progress,
    search_problem,
)
from harmonic_nas.errors import HarmonicError
from harmonic_nas.utils.progress import ProgressFn

_SEARCH_TASKS = ("search:", "final:", "baseline")


@contextmanager
def search_progress() -> Iterator[ProgressFn]:
    """Rich bars for the search (candidates, generation, front size) plus ONE bar for whatever
    the candidate being evaluated reports (fusion epochs, ...), instead of a bar per candidate."""
    with rich_progress() as bars:

        def update(task: str, completed: int, total: int) -> None:
            if task.startswith(_SEARCH_TASKS):
                bars(task, completed, total)
            else:
                bars("  current candidate", completed, total)

        yield update


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _candidate_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("trial", "state", "gen", "val_metric", "latency_ms", "energy_mj", "params", "note"):
        table.add_column(col, justify="left" if col in ("state", "note") else "right")
    for r in rows:
        table.add_row(
            str(r["trial"]),
            r["state"],
            _fmt(r["generation"]),
            _fmt(r["val_metric"]),
            _fmt(r["latency_ms"]),
            _fmt(r["energy_mj"]),
            _fmt(r["params"]),
            (r["note"] or "")[:60],
        )
    return table


def _read_only(path: Path) -> str | None:
    """``"read-only filesystem"`` / ``"read-only"`` when ``path`` cannot be written, else None."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "on a read-only filesystem"
    except OSError:
        return None
    return None if os.access(path, os.W_OK) else "read-only"


def _read_only_error(run: Path, storage: str | None) -> HarmonicError | None:
    """The true reason a SQLite study of ``run`` cannot be opened, when it is a read-only file or
    directory (SQLite writes a lock and a journal beside the study even to read it)."""
    if storage is not None and not storage.startswith("sqlite:///"):
        return None
    db = Path(storage[len("sqlite:///") :]).expanduser() if storage else Path(run) / "study.db"
    for path in (db, db.parent):
        why = _read_only(path) if path.exists() else None
        if why:
            what = "file" if path.is_file() else "directory"
            return HarmonicError(
                f"cannot open the study {db}: the {what} {path} is {why}, and SQLite must write "
                "its lock and journal beside the study even to read it; make it writable, or "
                f"copy the run to a writable place (cp -r {run} DIR) and run status on the copy"
            )
    return None


def register(app: typer.Typer) -> None:
    """Add ``search``, ``baselines`` and ``status`` to the app."""

    @app.command("search")
    def search_cmd(
        config: Path = typer.Argument(..., help="experiment YAML file"),
        storage: str | None = typer.Option(
            None,
            "--storage",
            help="Optuna storage URL (default sqlite:///<run>/study.db); "
            "postgresql://user:pw@host:5432/db lets several machines share one study",
        ),
        workers: int | None = typer.Option(
            None, "--workers", help="local worker processes (default: search.workers)"
        ),
        strategy: str | None = typer.Option(
            None,
            "--strategy",
            help="nsga2 | random | accuracy-only | predictor (default: search.strategy)",
        ),
        study_name: str | None = typer.Option(
            None, "--study-name", help="study name (default: the experiment name)"
        ),
        override: list[str] | None = override_option(),
    ) -> None:
        """Search (or resume) NSGA-II over joint genomes; writes pareto.json, candidates.json,
        hypervolume.json and models/. Rerun the same command to resume."""
        from harmonic_nas.preflight import estimate_for
        from harmonic_nas.search import run_search
        from harmonic_nas.search.driver import check_study_config

        cfg = load_cfg(config, override)
        preflight(cfg, config)
        check_study_config(cfg, storage=storage, strategy=strategy, study_name=study_name)
        estimate = estimate_for(cfg, workers=workers)
        console.print(estimate.describe(), markup=False, highlight=False, soft_wrap=True)
        with search_progress() as progress:
            summary = run_search(
                cfg,
                storage=storage,
                workers=workers,
                strategy=strategy,
                study_name=study_name,
                problem=search_problem(),
                progress=progress,
            )
        console.print(
            f"study '{summary.study_name}' ({summary.strategy}): {summary.n_complete}/"
            f"{summary.budget} candidates complete, {summary.n_failed} failed, "
            f"{summary.n_duplicates} duplicate proposals skipped; Pareto front "
            f"{summary.front_size}, hypervolume {summary.hypervolume:.4f}; {best_line(summary)}",
            soft_wrap=True,
        )
        console.print(objectives_line(summary.candidates_path), soft_wrap=True, highlight=False)
        console.print(f"candidates: {summary.candidates_path}", soft_wrap=True)
        console.print(f"hypervolume: {summary.hypervolume_path}", soft_wrap=True)
        if summary.pareto_path is not None:
            console.print(f"Pareto set: {summary.pareto_path}", soft_wrap=True)
        console.print(
            f"inspect: harmonic-nas status {summary.run}  |  optuna-dashboard {summary.storage}",
            soft_wrap=True,
            highlight=False,
        )

    @app.command("baselines")
    def baselines_cmd(
        config: Path = typer.Argument(..., help="experiment YAML file"),
    ) -> None:
        """Reference points: max backbones + fusion search (BM-NAS style, no hardware term), late
        fusion of the max backbones, and each modality alone -> run/baselines.json."""
        from harmonic_nas.search.baselines import run_baselines

        cfg = load_cfg(config)
        with search_progress() as progress:
            path = run_baselines(cfg, progress=progress)
        from harmonic_nas.utils.io import read_json

        data = read_json(path, schema_version=1, what="baselines")
        table = Table(title=f"baselines ({cfg.device.name})", title_justify="left")
        for col in ("name", "val_metric", "test_metric", "latency_ms", "energy_mj", "params"):
            table.add_column(col, justify="left" if col == "name" else "right")
        for b in data["baselines"]:
            table.add_row(
                b["name"],
                _fmt(b["val_metric"]),
                _fmt(b["test_metric"]),
                _fmt(b["latency_ms"]),
                _fmt(b["energy_mj"]),
                _fmt(b["params"]),
            )
        console.print(table)
        console.print(f"saved to {path}")

    @app.command("status")
    def status_cmd(
        run: Path = typer.Argument(..., help="run directory, e.g. runs/quick"),
        storage: str | None = typer.Option(
            None, "--storage", help="storage URL (default: the one the search recorded)"
        ),
        all_candidates: bool = typer.Option(
            False, "--all", help="list every candidate, not only the Pareto front"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the status as JSON"),
    ) -> None:
        """Show a running or finished study: progress, failures, Pareto front, hypervolume."""
        from harmonic_nas.search import study_status
        from harmonic_nas.search.storage import StorageError

        try:
            statuses = list(study_status(run, storage=storage))
        except StorageError as exc:
            raise _read_only_error(run, storage) or exc from None
        if as_json:
            print_json(statuses)
            return
        for s in statuses:
            state = {
                "finished": "finished",
                "running": "running / interrupted",
                "evaluated": f"evaluated, not finished: {escape(s['stage_note'])}; rerun "
                "`harmonic-nas search CONFIG` to write them",
            }.get(s["stage"], s["stage"])
            console.print(
                f"[bold]{escape(s['study'])}[/bold] ({escape(s['strategy'])}, {state}) — "
                f"{escape(s['storage'])}\n"
                f"  candidates {s['complete']}/{s['budget']} complete, {s['running']} running, "
                f"{s['waiting']} queued, {s['failed']} failed, {s['duplicates']} duplicates skipped; "
                f"generation {s['generation']}/{s['generations']}; front {s['front_size']}; "
                f"hypervolume {s['hypervolume']:.4f}; {escape(str(s['best_summary']))}"
                + (f"; {s['low_fidelity']} at low fidelity" if s.get("low_fidelity") else ""),
                highlight=False,
                soft_wrap=True,
                markup=True,
            )
            for line in s.get("deploy") or []:
                console.print(f"  {escape(line)}", highlight=False, soft_wrap=True, markup=True)
            rows = s["candidates"] if all_candidates else s["front"]
            title = "all candidates" if all_candidates else "Pareto front"
            console.print(_candidate_table(title, rows))
