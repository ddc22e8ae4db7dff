"""``harmonic-nas run``: every stage of the pipeline, each skipped when its artifact is current."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from harmonic_nas.cli._common import (
    best_line,
    console,
    load_cfg,
    objectives_line,
    override_option,
    preflight,
    rich_progress,
)
from harmonic_nas.errors import ConfigError
from harmonic_nas.utils.io import check_writable_dir

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig

#: Keys that say where a run lives, not what it is (a moved run keeps its identity).
_LOCATION_KEYS = ("name", "run_dir")


def _stage(name: str) -> None:
    console.rule(f"[bold]{name}")


def _best_model_id(pareto: Path) -> str:
    """The val-best member of the Pareto set (as ``pareto.json`` records it)."""
    data = json.loads(pareto.read_text())
    best = data.get("best")
    if isinstance(best, dict) and best.get("id"):
        return str(best["id"])
    members = data["members"]  # written before the best member was recorded
    return str(max(members, key=lambda m: (m["val_metric"], -m["latency_ms"]))["id"])


def check_run_dir(cfg: ExperimentConfig) -> None:
    """Decide before writing: refuse a run directory that is a file, cannot be written, or holds
    a run made with another config (naming the differing keys). Only the budget keys and the
    worker count may change: raising ``search.generations`` / ``search.population`` extends the
    run's study."""
    from harmonic_nas.config import load_run_config
    from harmonic_nas.search.storage import RUN_MUTABLE_KEYS, differing_keys, flatten

    run = cfg.run_path
    existing = run / "config.yaml"
    if existing.is_file():
        old = load_run_config(run)
        keys = differing_keys(
            flatten(old.model_dump(mode="json")),
            flatten(cfg.model_dump(mode="json")),
            ignore=(*RUN_MUTABLE_KEYS, *_LOCATION_KEYS),
        )
        if keys:
            shown = ", ".join(keys[:8]) + (" ..." if len(keys) > 8 else "")
            raise ConfigError(
                f"run directory {run} holds a run made with another config (it differs in "
                f"{shown}), nothing was written; give the config a new `name` to start a new "
                "run, or change only " + " / ".join(RUN_MUTABLE_KEYS) + " to extend this one"
            )
    check_writable_dir(run)


def run_pipeline(
    cfg: ExperimentConfig, *, export_format: str = "onnx", source: str | Path = ""
) -> Path:
    """data -> pretrain -> profile -> search -> baselines -> report -> export; returns report path.

    Before anything runs or is written: every check that needs no training (one error listing
    all problems), the run directory guard, then the search's estimated cost is printed.
    """
    from harmonic_nas.config import save_resolved
    from harmonic_nas.data import load_dataset
    from harmonic_nas.hardware.registry import get_lut
    from harmonic_nas.preflight import estimate_for
    from harmonic_nas.pretrain import pretrain_all
    from harmonic_nas.results import export, pareto_markdown, report
    from harmonic_nas.search import run_search
    from harmonic_nas.search.baselines import run_baselines

    start = time.perf_counter()
    preflight(cfg, source or cfg.name)
    check_run_dir(cfg)
    console.print(estimate_for(cfg).describe(), markup=False, highlight=False, soft_wrap=True)
    save_resolved(cfg)
    _stage("1/6 data")
    with rich_progress(transient=True) as progress:
        ds = load_dataset(cfg, progress=progress)
    sizes = ", ".join(f"{s} {len(ds.split(s))}" for s in ("train", "val", "test"))
    mods = ", ".join(f"{m.name} {tuple(m.shape)}" for m in ds.modalities)
    console.print(f"{ds.name}: {ds.task}, {ds.num_classes} classes; {mods}; {sizes}")

    _stage("2/6 pretrain supernets")
    with rich_progress(transient=True) as progress:
        results = pretrain_all(cfg, ds, list(cfg.modalities), progress=progress)
    for modality, res in zip(cfg.modalities, results, strict=True):
        console.print(
            f"{modality}: {res.status} ({res.preset}); val {res.metric} "
            f"max subnet {res.max_metric:.4f}, min subnet {res.min_metric:.4f}"
        )

    _stage(f"3/6 device cost table ({cfg.device.name})")
    with rich_progress(transient=True) as progress:
        lut = get_lut(cfg, progress=progress)
    console.print(f"{len(lut.entries)} layers, energy source {lut.energy_source}")

    _stage("4/6 search")
    from harmonic_nas.cli.search import search_progress

    with search_progress() as progress:
        summary = run_search(cfg, progress=progress)
    console.print(
        f"{summary.n_complete}/{summary.budget} candidates complete, {summary.n_failed} failed; "
        f"front of {summary.front_size}; hypervolume {summary.hypervolume:.4f}; "
        f"{best_line(summary)}"
    )
    console.print(objectives_line(summary.candidates_path), soft_wrap=True, highlight=False)
    with search_progress() as progress:
        run_baselines(cfg, progress=progress)

    _stage("5/6 report")
    with rich_progress(transient=True) as progress:
        html = report(cfg.run_path, progress=progress)
    console.print(pareto_markdown(cfg.run_path), markup=False, highlight=False, soft_wrap=True)

    _stage("6/6 export")
    assert summary.pareto_path is not None
    model_id = _best_model_id(summary.pareto_path)
    with rich_progress(transient=True) as progress:
        exp = export(cfg.run_path, model_id, export_format, progress=progress)
    lut_note = f" (LUT predicts {exp.lut_latency_ms:.3f} ms)" if exp.lut_latency_ms else ""
    console.print(
        f"{model_id} -> {exp.model_path}; max |onnx - torch| {exp.max_abs_diff:.2e}; "
        f"measured {exp.latency_ms:.3f} ms here{lut_note}"
    )
    console.print(f"finished in {time.perf_counter() - start:.0f} s")
    console.print(f"report: {html}", markup=False, highlight=False, soft_wrap=True)
    return html


def register(app: typer.Typer) -> None:
    """Add ``run`` to the app."""

    @app.command("run")
    def run_cmd(
        config: Path = typer.Argument(..., help="experiment YAML file, e.g. configs/quick.yaml"),
        export_format: str = typer.Option(
            "onnx", "--export-format", help="format of the exported best model: onnx | torchscript"
        ),
        override: list[str] | None = override_option(),
    ) -> None:
        """Run the whole pipeline: data -> pretrain -> profile -> search -> report -> export.

        Every stage is skipped when its artifact exists and matches the config, so rerunning the
        same command resumes where it stopped. Every check that needs no training (presets,
        dataset, shapes, device table, ...) runs first and lists all problems at once.
        """
        run_pipeline(load_cfg(config, override), export_format=export_format, source=config)
