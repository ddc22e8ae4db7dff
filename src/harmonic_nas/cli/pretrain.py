"""CLI commands of the pretrain stage: ``harmonic-nas pretrain CONFIG [--modality M] [--force]``."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from harmonic_nas.cli._common import console, load_cfg, override_option, preflight, rich_progress
from harmonic_nas.utils.env import THREADS_ENV


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the app."""

    @app.command("pretrain")
    def pretrain_cmd(
        config: Path = typer.Argument(..., help="experiment YAML file, e.g. configs/quick.yaml"),
        modality: list[str] | None = typer.Option(
            None, "--modality", "-m", help="train only this modality (repeatable); default: all"
        ),
        force: bool = typer.Option(
            False, "--force", help="retrain even if the supernet is current"
        ),
        threads: int | None = typer.Option(
            None,
            "--threads",
            min=1,
            help="torch CPU threads (default: $HARMONIC_NAS_THREADS, else 1)",
        ),
        override: list[str] | None = override_option(),
    ) -> None:
        """Train one elastic supernet per modality (sandwich rule + in-place distillation)."""
        import torch

        from harmonic_nas.config import save_resolved
        from harmonic_nas.data import load_dataset
        from harmonic_nas.pretrain import pretrain_all

        cfg = load_cfg(config, override)
        names = list(modality) if modality else list(cfg.modalities)
        preflight(cfg, config, stages=("data", "pretrain"), modalities=names)
        if threads is not None:  # this process's thread policy (harmonic_nas.utils.threads)
            os.environ[THREADS_ENV] = str(threads)
            torch.set_num_threads(threads)
        with rich_progress(transient=True) as progress:
            dataset = load_dataset(cfg, progress=progress)
            save_resolved(cfg)  # once the dataset is accepted: a refusal leaves the run alone
            results = pretrain_all(cfg, dataset, names, force=force, progress=progress)
        for r in results:
            if r.status == "skipped":
                console.print(
                    f"{r.modality}: supernet is up to date ({r.checkpoint}); "
                    "pass --force to retrain",
                    highlight=False,
                )
            else:
                console.print(
                    f"{r.modality}: {r.status} {r.preset} supernet for {r.epochs} epochs in "
                    f"{r.train_time_s:.1f}s; val {r.metric}: max subnet {r.max_metric:.4f}, "
                    f"min subnet {r.min_metric:.4f} -> {r.checkpoint}",
                    highlight=False,
                )
