"""CLI of the fusion stage: ``harmonic-nas fusion CONFIG [--arch BACKBONES.json] [--out DIR]``.

Runs the inner tier alone for given backbones (e.g. to reproduce a model from the paper): loads
the pretrained supernets and the dataset, takes the fusion-operator costs from the device LUT,
searches and retrains the fusion network, and writes arch.json (with the genotype), weights.pt,
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
            None, "--out", help="output directory (default <run>/fusion)"
        ),
        seed: int | None = typer.Option(None, "--seed", help="search seed (default the config's)"),
    ) -> None:
        """Search and retrain the fusion network of given backbones (the inner tier alone)."""
        from harmonic_nas.backbones.layers import LayerSpec
        from harmonic_nas.data import load_dataset
        from harmonic_nas.errors import LUTError
        from harmonic_nas.fusion.ops import check_ops
        from harmonic_nas.fusion.runner import (
            arch_from_json,
            check_arch_against_dataset,
            max_arch,
            run_inner_tier,
            save_inner_tier,
        )
        from harmonic_nas.hardware.cost import CostModel
        from harmonic_nas.hardware.keys import lut_key
        from harmonic_nas.hardware.registry import get_lut
        from harmonic_nas.pretrain import load_supernet
        from harmonic_nas.utils.io import read_json

        cfg = load_cfg(config)
        fc = cfg.fusion
        check_ops(list(fc.ops))
        spec_json = read_json(arch, what="backbones file") if arch is not None else None
        with rich_progress(transient=True) as progress:
            dataset = load_dataset(cfg, progress=progress)
            n_classes = dataset.num_classes
            if spec_json is not None:
                spec = arch_from_json(spec_json, cfg, n_classes)
                check_arch_against_dataset(spec, dataset)
            supernets = {m.name: load_supernet(cfg, m.name, n_classes) for m in dataset.modalities}
            if spec_json is None:
                spec = max_arch(cfg, supernets, n_classes)
            check_arch_against_dataset(spec, dataset)
            lut = get_lut(cfg, progress=progress)
            model = CostModel(lut, fallback=cfg.device.fallback_predictor)
            try:
                op_costs = model.op_costs(fc.C, fc.L, fc.ops)
            except LUTError:
                missing = [
                    op
                    for op in fc.ops
                    if lut_key(
                        LayerSpec("fusion_op", (fc.C, fc.L), fc.C, fc.C, op=op, C=fc.C, L=fc.L)
                    )
                    not in lut
                ]
                raise LUTError(
                    f"the LUT of device '{lut.device.name}' has no cost for fusion operator(s) "
                    f"{missing or list(fc.ops)} at C={fc.C}, L={fc.L}; profile them "
                    "(`harmonic-nas profile CONFIG`) or set fusion.C/L to a profiled size"
                ) from None
            result = run_inner_tier(
                cfg,
                spec,
                dataset,
                supernets,
                op_costs=op_costs,
                base_cost=model.base_cost(spec),
                seed=seed,
                progress=progress,
            )
        cost = model.cost_arch(result.arch)
        paths = save_inner_tier(result, out or cfg.run_path / "fusion")
        metric = "weighted F1" if dataset.task == "multilabel" else "accuracy"
        r = result.result
        console.print(f"genotype: {r.genotype}", highlight=False)
        console.print(
            f"val {metric} (retrained discrete net): {r.val_metric:.4f} "
            f"(search best {r.search_metric:.4f} at epoch {r.best_epoch}); params {r.params}",
            highlight=False,
        )
        console.print(
            f"latency {cost.total.latency_ms:.3f} ms, energy {cost.total.energy_mj:.3f} mJ "
            f"on '{lut.device.name}' (paper accounting: {cost.paper_total.latency_ms:.3f} ms, "
            f"{cost.paper_total.energy_mj:.3f} mJ)",
            highlight=False,
        )
        for name, p in paths.items():
            console.print(f"{name}: {p}", highlight=False)
