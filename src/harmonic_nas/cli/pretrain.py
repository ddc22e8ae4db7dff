"""CLI commands of the pretrain stage: ``harmonic-nas pretrain CONFIG [--modality M] [--force]``.

Started by ``torchrun --nproc-per-node N -m harmonic_nas pretrain CONFIG``, each process is one
rank of a data-parallel run (:mod:`harmonic_nas.pretrain.distributed`); rank 0 prints and writes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from harmonic_nas.cli._common import console, load_cfg, override_option, preflight, rich_progress
from harmonic_nas.utils.env import THREADS_ENV

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.pretrain import PretrainResult


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
        """Train one elastic supernet per modality (sandwich rule + in-place distillation).

        Under torchrun, the ranks train each supernet together (data-parallel)."""
        import torch

        from harmonic_nas.config import save_resolved
        from harmonic_nas.data import load_dataset
        from harmonic_nas.pretrain import pretrain_all
        from harmonic_nas.pretrain.distributed import launched_by_torchrun

        cfg = load_cfg(config, override)
        names = list(modality) if modality else list(cfg.modalities)
        preflight(cfg, config, stages=("data", "pretrain"), modalities=names)
        if threads is not None:  # this process's thread policy (harmonic_nas.utils.threads)
            os.environ[THREADS_ENV] = str(threads)
            torch.set_num_threads(threads)
        if launched_by_torchrun():
            _pretrain_ranks(cfg, names, force)
            return
        save_resolved(cfg)
        with rich_progress(transient=True) as progress:
            dataset = load_dataset(cfg, progress=progress)
            save_resolved(cfg)  # once the dataset is accepted: a refusal leaves the run alone
            results = pretrain_all(cfg, dataset, names, force=force, progress=progress)
        _print_results(results)


def _pretrain_ranks(cfg: ExperimentConfig, names: list[str], force: bool) -> None:
    """This torchrun rank's part of a data-parallel pretraining (rank 0 writes and prints)."""
    from harmonic_nas.config import save_resolved
    from harmonic_nas.data import load_dataset
    from harmonic_nas.pretrain.distributed import pretrain_distributed, process_group
    from harmonic_nas.utils.progress import no_progress

    with process_group(cfg) as ctx:
        if ctx.is_main:
            save_resolved(cfg)
            console.print(
                f"data-parallel pretraining: {ctx.world} ranks ({ctx.backend}), global batch "
                f"{cfg.pretrain.batch_size}",
                highlight=False,
            )
            with rich_progress(transient=True) as progress:
                dataset = load_dataset(cfg, progress=progress)  # builds the cache once
                ctx.barrier()
                results = pretrain_distributed(
                    cfg, dataset, names, ctx, force=force, progress=progress
                )
            _print_results(results)
        else:
            ctx.barrier()  # rank 0 has built the dataset cache
            dataset = load_dataset(cfg, progress=no_progress)
            pretrain_distributed(cfg, dataset, names, ctx, force=force)


def _print_results(results: list[PretrainResult]) -> None:
    for r in results:
        if r.status == "skipped":
            console.print(
                f"{r.modality}: supernet is up to date ({r.checkpoint}); pass --force to retrain",
                highlight=False,
            )
        else:
            console.print(
                f"{r.modality}: {r.status} {r.preset} supernet for {r.epochs} epochs in "
                f"{r.train_time_s:.1f}s; val {r.metric}: max subnet {r.max_metric:.4f}, "
                f"min subnet {r.min_metric:.4f} -> {r.checkpoint}",
                highlight=False,
            )
