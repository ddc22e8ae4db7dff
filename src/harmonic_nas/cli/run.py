"""``harmonic-nas run``: every stage of the pipeline, each skipped when its artifact is current.

The sequence and its checks are :func:`harmonic_nas.pipeline.run`; this module only renders.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from harmonic_nas.cli._common import (
    best_line,
    console,
    load_cfg,
    objectives_line,
    override_option,
    rich_progress,
    search_problem,
)
from harmonic_nas.pipeline import PipelineHooks, check_run_dir
from harmonic_nas.utils.progress import ProgressFn

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig

__all__ = ["check_run_dir", "register", "run_pipeline"]

_TITLES = {
    "data": "1/6 data",
    "pretrain": "2/6 pretrain supernets",
    "search": "4/6 search",
    "report": "5/6 report",
    "export": "6/6 export",
}


class _Render(PipelineHooks):
    """Rich rendering of :func:`harmonic_nas.pipeline.run`'s stages."""

    def __init__(self, cfg: ExperimentConfig) -> None:
        self.cfg = cfg

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[ProgressFn]:
        from harmonic_nas.cli.search import search_progress

        if name == "profile":
            console.rule(f"[bold]3/6 device cost table ({self.cfg.device.name})")
        elif name in _TITLES:
            console.rule(f"[bold]{_TITLES[name]}")
        bars = search_progress() if name in ("search", "baselines") else rich_progress(True)
        with bars as progress:
            yield progress

    def done(self, name: str, value: Any) -> None:
        render = getattr(self, f"_{name}", None)
        if render is not None:
            render(value)

    def _estimate(self, estimate: Any) -> None:
        console.print(estimate.describe(), markup=False, highlight=False, soft_wrap=True)

    def _data(self, ds: Any) -> None:
        sizes = ", ".join(f"{s} {len(ds.split(s))}" for s in ("train", "val", "test"))
        mods = ", ".join(f"{m.name} {tuple(m.shape)}" for m in ds.modalities)
        console.print(f"{ds.name}: {ds.task}, {ds.num_classes} classes; {mods}; {sizes}")

    def _pretrain(self, results: Any) -> None:
        for modality, res in zip(self.cfg.modalities, results, strict=True):
            console.print(
                f"{modality}: {res.status} ({res.preset}); val {res.metric} "
                f"max subnet {res.max_metric:.4f}, min subnet {res.min_metric:.4f}"
            )

    def _profile(self, lut: Any) -> None:
        n = len(lut.entries)
        console.print(f"{n} layer{'' if n == 1 else 's'}, energy source {lut.energy_source}")

    def _search(self, summary: Any) -> None:
        console.print(
            f"{summary.n_complete}/{summary.budget} candidates complete, {summary.n_failed} "
            f"failed; front of {summary.front_size}; hypervolume {summary.hypervolume:.4f}; "
            f"{best_line(summary)}"
        )
        console.print(objectives_line(summary.candidates_path), soft_wrap=True, highlight=False)

    def _report(self, html: Path) -> None:
        from harmonic_nas.results import deploy_summary, pareto_markdown

        console.print(
            pareto_markdown(self.cfg.run_path), markup=False, highlight=False, soft_wrap=True
        )
        for line in deploy_summary(self.cfg.run_path):
            console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _export(self, exp: Any) -> None:
        lut_note = f" (LUT predicts {exp.lut_latency_ms:.3f} ms)" if exp.lut_latency_ms else ""
        console.print(
            f"{exp.model_id} -> {exp.model_path}; max |onnx - torch| {exp.max_abs_diff:.2e}; "
            f"measured {exp.latency_ms:.3f} ms here{lut_note}"
        )


def run_pipeline(
    cfg: ExperimentConfig, *, export_format: str = "onnx", source: str | Path = ""
) -> Path:
    """:func:`harmonic_nas.pipeline.run`, rendered; returns the report path."""
    from harmonic_nas import pipeline

    result = pipeline.run(
        cfg,
        export_format=export_format,
        source=source,
        problem=search_problem(),
        hooks=_Render(cfg),
    )
    console.print(f"finished in {result.elapsed_s:.0f} s")
    console.print(f"report: {result.report_path}", markup=False, highlight=False, soft_wrap=True)
    return result.report_path


def register(app: typer.Typer) -> None:
    """Add ``run`` to the app."""

    @app.command("run")
    def run_cmd(
        config: Path = typer.Argument(..., help="experiment YAML file, e.g. configs/quick.yaml"),
        export_format: str = typer.Option(
            "onnx",
            "--export-format",
            help="format of the exported model (the recommended member): onnx | torchscript",
        ),
        override: list[str] | None = override_option(),
    ) -> None:
        """Run the whole pipeline: data -> pretrain -> profile -> search -> report -> export.

        Every stage is skipped when its artifact exists and matches the config, so rerunning the
        same command resumes where it stopped. Every check that needs no training (presets,
        dataset, shapes, device table, ...) runs first and lists all problems at once.
        """
        run_pipeline(load_cfg(config, override), export_format=export_format, source=config)
