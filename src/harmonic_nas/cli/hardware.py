"""CLI commands of the hardware stage: ``profile``, ``cost`` and ``lut import|validate|show|list``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from harmonic_nas.cli._common import console, load_cfg, print_json, rich_progress
from harmonic_nas.errors import ConfigError

if TYPE_CHECKING:
    from harmonic_nas.hardware.lut import LUT


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def _calibration_line(lut: LUT) -> str:
    c = lut.calibration
    if c is None:
        return "calibration: none (the raw LUT sum is the total)"
    err = "-" if c.heldout_mape_pct is None else f"{c.heldout_mape_pct:.2f} %"
    return (
        f"calibration on {c.samples} whole models: {c.form} (a {c.a:.4f}, w {c.w:.3e} ms/byte, "
        f"c {c.c:+.4f} ms), held-out MAPE {err}"
    )


def spec_name(path: Path) -> str:
    """A short name for an ARCH.json (its model folder, or its file stem)."""
    return path.resolve().parent.name if path.name == "arch.json" else path.stem


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the app."""
    lut_app = typer.Typer(
        name="lut",
        help="Device lookup tables: import published ones, validate, inspect.",
        no_args_is_help=True,
    )
    app.add_typer(lut_app, name="lut")

    @app.command("profile")
    def profile_cmd(
        config: Path = typer.Argument(..., help="experiment YAML file"),
        device: str = typer.Option(None, help="name of the LUT to write (default: device.name)"),
        backend: str = typer.Option(None, help="onnxruntime or torch (default: device.backend)"),
        threads: int = typer.Option(None, min=1, help="intra-op threads (default: device.threads)"),
        provider: str = typer.Option(
            None, help="ONNX Runtime execution provider (default: device.provider)"
        ),
        kit: Path = typer.Option(
            None,
            "--kit",
            help="write a device kit into this new folder instead of profiling here "
            "(ONNX models + a runner needing only numpy and onnxruntime)",
        ),
        sample: int = typer.Option(
            None, "--sample", min=1, help="with --kit: time only K layers spanning the space"
        ),
    ) -> None:
        """Measure every distinct layer of the configured search space on this machine, or write
        a kit that measures it on a device that cannot run harmonic-nas (--kit)."""
        from harmonic_nas.hardware.lut_source import run_lut_path
        from harmonic_nas.hardware.profiler import profile_device

        cfg = load_cfg(config)
        if backend is not None and backend not in ("onnxruntime", "torch"):
            raise ConfigError(f"unknown backend {backend!r}; use onnxruntime or torch")
        if sample is not None and kit is None:
            raise ConfigError("--sample only applies to a kit; add --kit DIR")
        if kit is not None:
            from harmonic_nas.hardware.kit import RUNNER_NAME, write_kit

            with rich_progress() as progress:
                done = write_kit(cfg, kit, sample=sample, progress=progress)
            console.print(
                f"kit written to {done.folder}: {done.layers} of {done.space_layers} layers, "
                f"{done.calibration_models} calibration models\non the device: python "
                f"{RUNNER_NAME} --provider CPUExecutionProvider --out results.json\nthen here: "
                f"harmonic-nas lut import results.json --device NAME",
                highlight=False,
            )
            return
        if provider is not None:
            from harmonic_nas.hardware.backends import check_provider

            check_provider(provider)
        name = device or cfg.device.name
        target = run_lut_path(cfg, name)  # a bad device name is refused before profiling
        with rich_progress() as progress:
            lut = profile_device(
                cfg,
                device=name,
                backend=backend,
                threads=threads,
                provider=provider,
                progress=progress,
            )
        path = lut.save(target)
        console.print(
            f"profiled {len(lut)} layers in {lut.meta.get('profiling_time_s', 0):.1f} s "
            f"({lut.device.backend}, {lut.device.threads} thread(s), energy: {lut.energy_source}); "
            f"per-model overhead {_fmt(lut.overhead.latency_ms if lut.overhead else 0.0)} ms",
            highlight=False,
        )
        if lut.calibration is not None:
            console.print(_calibration_line(lut), highlight=False)
        console.print(f"LUT written to {path}")

    @app.command("cost")
    def cost_cmd(
        config: Path = typer.Argument(..., help="experiment YAML file (run dir, device settings)"),
        arch: Path = typer.Option(..., "--arch", help="ARCH.json of the architecture"),
        device: str = typer.Option(None, help="device whose LUT to use (default: device.name)"),
        fallback: bool = typer.Option(
            None, "--fallback/--no-fallback", help="predict layers missing from the LUT"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the breakdown as JSON"),
    ) -> None:
        """Latency and energy breakdown of an architecture on a device."""
        import json

        from harmonic_nas.fusion import ArchSpec
        from harmonic_nas.hardware.cost import CostModel
        from harmonic_nas.hardware.lut_source import get_lut

        cfg = load_cfg(config)
        spec = ArchSpec.load(arch)
        with rich_progress(transient=True) as progress:
            lut = get_lut(cfg, device=device, progress=progress)
        use_fallback = cfg.device.fallback_predictor if fallback is None else fallback
        model = CostModel(lut, fallback=use_fallback)
        if spec.genotype is None:
            backbones = model.backbone_costs(spec)
            rows = [(f"backbone {m}", c) for m, c in backbones.items()]
            total = model.cost_backbones(spec)
            rows.append(("total (backbones only: no genotype)", total))
            if as_json:
                console.print_json(
                    json.dumps({"per_modality": {m: c.to_json() for m, c in backbones.items()}})
                )
                return
            predicted, uncosted = total.predicted_keys, total.uncosted_keys
        else:
            cost = model.cost_arch(spec)
            if as_json:
                console.print_json(json.dumps(cost.to_json()))
                return
            rows = [(f"backbone {m}", c) for m, c in cost.per_modality.items()]
            rows += [
                ("fusion operators", cost.fusion_ops),
                ("fusion reshape + head", cost.fusion_extra),
            ]
            if cost.overhead.latency_ms > 0:
                rows.append(("per-model overhead", cost.overhead))
            if cost.pruned.latency_ms > 0:
                rows.append(("layers the model never runs (pruned)", cost.pruned))
            if lut.calibration is not None and lut.calibration.form != "identity":
                rows.append(("raw total (LUT sum)", cost.raw_total))
                rows.append((f"total (calibrated: {lut.calibration.form})", cost.total))
            else:
                rows.append(("total", cost.total))
            rows.append(("paper total (backbones + fusion ops)", cost.paper_total))
            predicted, uncosted = cost.predicted_keys, cost.uncosted_keys
        table = Table(title=f"{spec_name(arch)} on {lut.device.name}")
        table.add_column("part")
        table.add_column("latency (ms)", justify="right")
        table.add_column("energy (mJ)", justify="right")
        for label, c in rows:
            sign = "-" if label.startswith("layers the model") else ""
            flag = (" *" if c.predicted else "") + (" †" if c.uncosted_keys else "")
            table.add_row(
                label, f"{sign}{_fmt(c.latency_ms)}{flag}", f"{sign}{_fmt(c.energy_mj)}{flag}"
            )
        console.print(table)
        console.print(f"energy source: {lut.energy_source}", highlight=False)
        if predicted:
            console.print(
                f"* {len(predicted)} layer(s) were not measured on {lut.device.name} but predicted "
                "(the fallback predictor, or the table's predicted entries): "
                + ", ".join(predicted),
                highlight=False,
            )
        if uncosted:
            console.print(
                f"† {len(uncosted)} layer(s) are NOT COSTED on {lut.device.name} (its table has no "
                "layer of their kind; left out of the totals): " + ", ".join(uncosted),
                highlight=False,
            )

    @lut_app.command("import")
    def import_cmd(
        files: list[Path] = typer.Argument(
            ..., help="published tables (backbone + fusion files), or a kit's results file"
        ),
        device: str = typer.Option(..., help="device name to install the table as"),
        description: str = typer.Option("", help="free-text description of the device"),
        force: bool = typer.Option(
            False, "--force", help="replace a table already installed for DEVICE"
        ),
        reference: list[Path] = typer.Option(
            None,
            "--reference",
            help="other devices' LUT files a sampled kit's missing layers are predicted from "
            "(default: every installed table of another device)",
        ),
    ) -> None:
        """Convert published tables (lat/enrg) or a kit's results into a LUT; install it."""
        from harmonic_nas.hardware.lut import LUT
        from harmonic_nas.hardware.lut_source import (
            check_replace,
            install_lut,
            installed_devices,
            installed_path,
        )
        from harmonic_nas.hardware.reference import import_reference_lut

        refs = (
            [LUT.load(p) for p in reference]
            if reference
            else [LUT.load(installed_path(d)) for d in installed_devices() if d != device]
        )
        lut = import_reference_lut(files, device, description=description, references=refs)
        if not force:
            check_replace(lut)
        path = install_lut(lut)
        console.print(
            f"imported {len(lut)} entries for {device} ({lut.energy_source}); installed at {path}",
            highlight=False,
        )
        if lut.predicted:
            console.print(
                f"{len(lut.predicted)} entries are predicted from {len(lut) - len(lut.predicted)} "
                f"measured ones and {', '.join(r.device.name for r in refs) or 'no other table'} "
                "(flagged wherever they are used)",
                highlight=False,
            )
        if lut.device.identity is not None:
            console.print(f"machine: {lut.device.identity.short()}", highlight=False)
        if lut.calibration is not None:
            console.print(_calibration_line(lut), highlight=False)

    @lut_app.command("validate")
    def validate_cmd(
        config: Path = typer.Argument(..., help="experiment YAML file"),
        device: str = typer.Option(
            None, help="device whose LUT to validate (default: device.name)"
        ),
        samples: int = typer.Option(50, min=2, help="random architectures to measure"),
        seed: int = typer.Option(None, help="sampling seed (default: the config's seed)"),
    ) -> None:
        """Measure random architectures end to end and compare with the LUT's prediction."""
        from harmonic_nas.hardware.lut_source import get_lut, run_lut_path
        from harmonic_nas.hardware.validate import save_validation, validate_lut

        cfg = load_cfg(config)
        with rich_progress() as progress:
            lut = get_lut(cfg, device=device, progress=progress)
            result = validate_lut(cfg, lut, samples=samples, seed=seed, progress=progress)
        json_path, png = save_validation(result, run_lut_path(cfg, lut.device.name).parent)
        s = result.summary()
        table = Table(title=f"LUT fidelity: {lut.device.name} ({result.backend})")
        table.add_column("metric")
        table.add_column("value", justify="right")
        table.add_row("samples", str(s["samples"]))
        table.add_row(
            "Kendall tau", f"{s['kendall_tau']:.3f}" if s["kendall_tau"] is not None else "-"
        )
        table.add_row("MAPE", f"{s['mape_pct']:.2f} %")
        table.add_row("within ±10 %", f"{s['within_10pct']:.0f} %")
        table.add_row("worst case", f"{s['worst_error_pct']:+.1f} % (sample {s['worst_index']})")
        table.add_row("mean bias", f"{s['mean_bias_pct']:+.2f} %")
        if "drift_corrected" in s:
            d = s["drift_corrected"]
            table.add_row("machine speed vs profiling", f"x{s['speed_ratio']:.3f}")
            table.add_row("MAPE (drift-corrected)", f"{d['mape_pct']:.2f} %")
        if "raw_sum" in s:
            table.add_row("MAPE of the raw LUT sum", f"{s['raw_sum']['mape_pct']:.2f} %")
        if "retiming" in s:
            r = s["retiming"]
            tau = "-" if r["kendall_tau"] is None else f"{r['kendall_tau']:.3f}"
            table.add_row("re-timing Kendall tau", tau)
            table.add_row("re-timing MAPE", f"{r['mape_pct']:.2f} %")
            table.add_row("verdict (tau >= 0.9, MAPE <= 5 %)", str(s["verdict"]))
        console.print(table)
        console.print(f"saved {json_path} and {png}")

    @lut_app.command("show")
    def show_cmd(
        target: str = typer.Argument(..., help="an installed device name or a LUT file"),
        entries: bool = typer.Option(False, help="list every entry"),
        as_json: bool = typer.Option(
            False, "--json", help="print the description (and --entries) as JSON"
        ),
    ) -> None:
        """Describe a LUT (installed device or file)."""
        from harmonic_nas.hardware.lut import LUT
        from harmonic_nas.hardware.lut_source import installed_path

        path = Path(target) if target.endswith(".json") else installed_path(target)
        lut = LUT.load(path)
        d = lut.device
        if as_json:
            info: dict[str, object] = {
                "path": str(path),
                "device": d.to_json(),
                "energy_source": lut.energy_source,
                "created": lut.created,
                "n_entries": len(lut),
                "n_predicted": len(lut.predicted),
                "overhead": lut.overhead.to_json() if lut.overhead is not None else None,
                "calibration": None if lut.calibration is None else lut.calibration.to_json(),
            }
            if entries:
                info["entries"] = {
                    key: {"latency_ms": e.latency_ms, "energy_mj": e.energy_mj}
                    for key, e in sorted(lut.entries.items())
                }
            print_json(info)
            return
        console.print(
            f"{path}\ndevice: {d.name} — {d.description}\nbackend: {d.backend}, threads: "
            f"{d.threads}, batch size {d.batch_size}\nenergy source: {lut.energy_source}\n"
            f"created: {lut.created}\nentries: {len(lut)}"
            + (f" ({len(lut.predicted)} predicted, not measured)" if lut.predicted else "")
            + (f"\nmachine: {d.identity.short()}" if d.identity is not None else "")
            + f"\n{_calibration_line(lut)}",
            highlight=False,
        )
        if entries:
            table = Table()
            table.add_column("key")
            table.add_column("latency (ms)", justify="right")
            table.add_column("energy (mJ)", justify="right")
            for key in sorted(lut.entries):
                e = lut.entries[key]
                flag = " *" if key in lut.predicted else ""
                table.add_row(key, _fmt(e.latency_ms) + flag, _fmt(e.energy_mj) + flag)
            console.print(table)

    @lut_app.command("list")
    def list_cmd() -> None:
        """Known devices and installed LUTs."""
        from harmonic_nas.hardware.lut_source import get_device, installed_path, list_devices

        table = Table()
        table.add_column("device")
        table.add_column("description")
        table.add_column("installed LUT")
        for name in list_devices():
            entry = get_device(name)
            path = installed_path(name)
            table.add_row(
                name,
                entry.description if entry else "",
                str(path) if path.is_file() else "-",
            )
        console.print(table)
