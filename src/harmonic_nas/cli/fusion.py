"""CLI of the fusion stage: ``harmonic-nas fusion CONFIG [--arch BACKBONES.json] [-o DIR]``.

Runs the inner tier alone (:func:`harmonic_nas.pipeline.run_fusion`) for given backbones (e.g. to
reproduce a model from the paper): loads the pretrained supernets and the dataset, takes the
fusion-operator costs from the device LUT, searches and retrains the fusion network, and writes arch.json (with the genotype), weights.pt,
fusion.json (per-epoch history) and genotype.png.
"""

from __future__ import annotations

from pathlib import Path

import typer

from harmonic_nas.cli._common import console, load_cfg, rich_progress


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the app."""

    @app.command("fusion")
    def fusion_cmd(
        config: Path = typer.Argument(..., help="experiment YAML file, e.g. configs/quick.yaml"),
        arch: Path | None = typer.Option(
            None,
            "--arch",
            help="ARCH.json-like file with one backbone genome per modality (cells/nodes "
            "optional, default the config's fusion.cells/nodes); default: every max subnet",
        ),
        out: Path | None = typer.Option(
            None, "--out", "-o", help="output directory (default <run>/fusion)"
        ),
        seed: int | None = typer.Option(None, "--seed", help="search seed (default the config's)"),
    ) -> None:
        """Search and retrain the fusion network of given backbones (the inner tier alone)."""
        from harmonic_nas.pipeline import run_fusion
        from harmonic_nas.tasks import metric_label

        cfg = load_cfg(config)
        with rich_progress(transient=True) as progress:
            done = run_fusion(cfg, arch=arch, out=out, seed=seed, progress=progress)
        cost, r = done.cost, done.inner.result
        metric = metric_label(done.inner.cache.task)
        console.print(f"genotype: {r.genotype}", highlight=False)
        console.print(
            f"val {metric} (retrained discrete net): {r.val_metric:.4f} "
            f"(search best {r.search_metric:.4f} at epoch {r.best_epoch}); params {r.params}",
            highlight=False,
        )
        console.print(
            f"latency {cost.total.latency_ms:.3f} ms, energy {cost.total.energy_mj:.3f} mJ "
            f"on '{done.device}' (paper accounting: {cost.paper_total.latency_ms:.3f} ms, "
            f"{cost.paper_total.energy_mj:.3f} mJ)",
            highlight=False,
        )
        for name, p in done.paths.items():
            console.print(f"{name}: {p}", highlight=False)
