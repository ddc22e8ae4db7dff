"""``harmonic-nas run``: every stage of the pipeline, each skipped when its artifact is current."""

from __future__ import annotations

from pathlib import Path

import typer

from harmonic_nas.cli._common import console, load_cfg
from harmonic_nas.config import save_resolved


def register(app: typer.Typer) -> None:
    """Add ``run`` to the app."""

    @app.command("run")
    def run_cmd(
        config: Path = typer.Argument(..., help="experiment YAML file, e.g. configs/quick.yaml"),
    ) -> None:
        """Run the whole pipeline: data -> pretrain -> profile -> search -> report -> export."""
        cfg = load_cfg(config)
        path = save_resolved(cfg)
        console.print(f"resolved config saved to {path}")
