"""CLI commands of the data stage: ``harmonic-nas data list | info NAME | build NAME``."""

from __future__ import annotations

import inspect
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from harmonic_nas.cli._common import console, load_cfg, rich_progress
from harmonic_nas.errors import DataError

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.data.types import MultimodalDataset

logger = logging.getLogger(__name__)

_PATH_HELP = "dataset folder or file (real datasets: soundmnist, avmnist, mmimdb, npz)"
_OPTION_HELP = "builder option key=value (repeatable), e.g. --option train_per_class=50"
_CONFIG_HELP = "take the dataset (and seed) from this experiment file and check its modalities"
_NAME_HELP = "dataset name (see `harmonic-nas data list`); optional with --config"


def _resolve(
    name: str | None, config: Path | None, path: Path | None, option: list[str] | None, seed: int
) -> tuple[str, Path | None, dict[str, Any], int, ExperimentConfig | None]:
    """NAME/--path/--option/--seed, or the dataset section of --config (flags override it)."""
    from harmonic_nas.data.options import parse_cli_options

    options = parse_cli_options(option)
    if config is None:
        if name is None:
            raise DataError("give a dataset NAME or --config CONFIG; see `harmonic-nas data list`")
        return name, path, options, seed, None
    cfg = load_cfg(config)
    if name is not None and name != cfg.dataset.name:
        raise DataError(
            f"dataset '{name}' differs from dataset.name '{cfg.dataset.name}' of {config}; "
            "drop NAME or --config"
        )
    merged = {**cfg.dataset.options, **options}
    return cfg.dataset.name, path or cfg.dataset.path, merged, cfg.seed, cfg


def _build(
    name: str,
    path: Path | None,
    options: dict[str, Any],
    seed: int,
    cfg: ExperimentConfig | None,
    force: bool = False,
) -> tuple[MultimodalDataset, float]:
    from harmonic_nas.data import build_dataset, check_modalities

    start = time.perf_counter()
    with rich_progress(transient=True) as progress:
        ds = build_dataset(
            name, path=path, options=options, seed=seed, progress=progress, force=force
        )
    if cfg is not None:
        check_modalities(ds, cfg)
    return ds, time.perf_counter() - start


def _print_summary(ds: MultimodalDataset) -> None:
    from harmonic_nas.data.summary import dataset_summary

    info = dataset_summary(ds)
    splits = list(info["sizes"])
    mods = Table(title=f"{ds.name}: modalities ({ds.task}, {ds.num_classes} classes)")
    for col in ("modality", "kind", "shape"):
        mods.add_column(col)
    for m in info["modalities"]:
        mods.add_row(m["name"], m["kind"], "x".join(str(s) for s in m["shape"]))
    console.print(mods)

    sizes = Table(title="split sizes")
    for s in splits:
        sizes.add_column(s, justify="right")
    sizes.add_row(*(str(info["sizes"][s]) for s in splits))
    console.print(sizes)

    what = "samples" if ds.task == "classification" else "positive labels"
    bal = Table(title=f"class balance ({what} per class)")
    bal.add_column("class")
    for s in splits:
        bal.add_column(s, justify="right")
    for k, cname in enumerate(info["class_names"]):
        bal.add_row(f"{k} {cname}", *(str(info["class_counts"][s][k]) for s in splits))
    console.print(bal)

    rng = Table(title="value ranges (after normalisation with train statistics)")
    for col in ("split", "modality", "min", "max", "mean", "std"):
        rng.add_column(col, justify="right" if col not in ("split", "modality") else "left")
    for s in splits:
        for mod, r in info["ranges"][s].items():
            rng.add_row(s, mod, *(f"{r[k]:.3f}" for k in ("min", "max", "mean", "std")))
    console.print(rng)
    if info["fingerprint"]:
        console.print(f"content hash: {info['fingerprint'][:16]}")
    if info["cache_file"]:
        console.print(f"cached in: {info['cache_file']}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``data`` sub-command group to the app."""
    data_app = typer.Typer(
        help="Datasets: list the registry, inspect a dataset, build (and cache) it.",
        no_args_is_help=True,
    )

    @data_app.command("list")
    def list_cmd() -> None:
        """List the registered datasets."""
        from harmonic_nas.data import get_dataset_entry, list_datasets

        table = Table(title="datasets")
        table.add_column("name")
        table.add_column("needs --path")
        table.add_column("description")
        for name in list_datasets():
            entry = get_dataset_entry(name)
            table.add_row(name, "yes" if entry.needs_path else "no", entry.summary)
        console.print(table)

    @data_app.command("info")
    def info_cmd(
        name: str | None = typer.Argument(None, help=_NAME_HELP),
        path: Path | None = typer.Option(None, "--path", help=_PATH_HELP),
        option: list[str] | None = typer.Option(None, "--option", "-o", help=_OPTION_HELP),
        seed: int = typer.Option(0, "--seed", help="build seed (av-digits)"),
        config: Path | None = typer.Option(None, "--config", "-c", help=_CONFIG_HELP),
    ) -> None:
        """Show a dataset: layout, options, modalities, shapes, split sizes, class balance, ranges."""
        from harmonic_nas.data import get_dataset_entry
        from harmonic_nas.data.options import options_table

        name, path, options, seed, cfg = _resolve(name, config, path, option, seed)
        entry = get_dataset_entry(name)
        console.print(f"[bold]{escape(name)}[/bold]: {escape(entry.summary)}", markup=True)
        doc = inspect.getmodule(entry.builder).__doc__ if inspect.getmodule(entry.builder) else None
        if entry.options is not None:
            opts = Table(title="options (--option k=v, or dataset.options in the config)")
            for col in ("option", "default", "meaning"):
                opts.add_column(col)
            for row in options_table(entry.options):
                opts.add_row(*row)
            console.print(opts)
        if entry.needs_path and path is None:
            if doc:
                console.print(inspect.cleandoc(doc), highlight=False, markup=False, soft_wrap=True)
            console.print("pass --path to inspect the data itself")
            return
        ds, _ = _build(name, path, options, seed, cfg)
        _print_summary(ds)

    @data_app.command("build")
    def build_cmd(
        name: str | None = typer.Argument(None, help=_NAME_HELP),
        path: Path | None = typer.Option(None, "--path", help=_PATH_HELP),
        option: list[str] | None = typer.Option(None, "--option", "-o", help=_OPTION_HELP),
        seed: int = typer.Option(0, "--seed", help="build seed (av-digits)"),
        config: Path | None = typer.Option(None, "--config", "-c", help=_CONFIG_HELP),
        force: bool = typer.Option(False, "--force", help="rebuild even if a cached build exists"),
    ) -> None:
        """Build a dataset (cached when built in) and print a short summary."""
        name, path, options, seed, cfg = _resolve(name, config, path, option, seed)
        ds, seconds = _build(name, path, options, seed, cfg, force)
        sizes: dict[str, Any] = {s: len(v) for s, v in ds.splits.items()}
        shapes = ", ".join(f"{m.name} {'x'.join(map(str, m.shape))}" for m in ds.modalities)
        console.print(
            f"built {name} in {seconds:.1f} s: {shapes}; "
            + ", ".join(f"{k} {v}" for k, v in sizes.items())
            + f"; hash {str(ds.meta.get('fingerprint', ''))[:16]}",
            highlight=False,
            soft_wrap=True,
        )
        if ds.meta.get("cache_file"):
            console.print(f"cached in {ds.meta['cache_file']}", highlight=False, soft_wrap=True)

    app.add_typer(data_app, name="data")
