"""The HTML report and the Markdown Pareto table, from a small finished run."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from harmonic_nas.cli import main
from harmonic_nas.errors import StageMissingError
from harmonic_nas.results import load_run, pareto_markdown, report
from harmonic_nas.results._plots import front_2d, validation_stats
from harmonic_nas.results._validation import (
    ValidationRecord,
    validation_pairs,
    validation_summary,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _embedded_images(page: str) -> list[bytes]:
    return [
        base64.b64decode(m)
        for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    ]


def test_report_is_self_contained_with_every_figure(fake_run: Path) -> None:
    path = report(fake_run)
    assert path == fake_run / "report.html"
    page = path.read_text(encoding="utf-8")
    art = load_run(fake_run)

    # offline: no external resource of any kind
    assert not re.search(r"(src|href)=[\"'](https?:)?//", page)
    assert "http://" not in page and "https://" not in page
    assert "<script src" not in page and "<link" not in page

    figures = sorted(p.name for p in (fake_run / "figures").glob("*.png"))
    expected = {
        "pareto_acc_latency.png",
        "pareto_acc_energy.png",
        "pareto_latency_energy.png",
        "hypervolume.png",
        "supernets.png",
        "cost_validation_host.png",
        *(f"arch_{m.id}.png" for m in art.members),
    }
    assert set(figures) == expected
    images = _embedded_images(page)
    assert len(images) == len(expected)
    on_disk = {(fake_run / "figures" / f).read_bytes() for f in figures}
    for img in images:
        assert img.startswith(PNG_MAGIC)
        assert img in on_disk  # the page embeds exactly the PNGs it saved


def test_report_tables(fake_run: Path) -> None:
    page = report(fake_run).read_text(encoding="utf-8")
    art = load_run(fake_run)
    assert len(art.members) >= 2
    for m in art.members:
        assert f"★ {m.id}" in page  # highlighted in the candidates table
        assert f"{m.val_metric:.4f}" in page
    # the sortable table of all candidates: one row per candidate, inline sorting script
    table = page.split('id="candidates"')[1]
    assert table.count("<tr") == len(art.candidates) + 1
    assert "FAIL" in table and "over the 5 ms budget" in table
    assert "table.sortable" in page and "addEventListener('click'" in page
    assert "late fusion (max)" in page  # baselines
    assert "MAPE" in page and "Spearman" in page  # cost-model validation
    assert "not run" not in page


def test_pareto_markdown_lists_every_member(fake_run: Path) -> None:
    art = load_run(fake_run)
    md = pareto_markdown(fake_run)
    lines = md.splitlines()
    assert lines[0] == "| id | val accuracy | test accuracy | latency ms | energy mJ | params |"
    assert len(lines) == 2 + len(art.members)
    first = art.members[0]
    assert lines[2].startswith(f"| {first.id} | {first.val_metric:.4f} | ")
    assert f"{first.latency_ms:.3f}" in lines[2] and str(first.params) in lines[2]
    assert "±" in lines[2]


def test_report_says_not_run_for_optional_stages(fake_run: Path) -> None:
    report(fake_run)
    for rel in (
        "hypervolume.json",
        "baselines.json",
        "supernets/image.json",
        "supernets/audio.json",
        "luts/host.validation.json",
    ):
        (fake_run / rel).unlink()
    page = report(fake_run).read_text(encoding="utf-8")
    for what in (
        "Baselines: not run",
        "Hypervolume history: not run",
        "Supernet training curves: not run",
        "Cost-model validation: not run",
    ):
        assert what in page
    assert not (fake_run / "figures" / "cost_validation_host.png").exists()  # stale one removed
    assert len(_embedded_images(page)) == 3 + len(load_run(fake_run).members)


def test_report_names_an_unreadable_validation_file(fake_run: Path) -> None:
    """A file that is not the hardware stage's record is reported with the reason, not guessed."""
    (fake_run / "luts" / "host.validation.json").write_text(
        json.dumps({"schema_version": 1, "device": "host", "mape": 0.12, "notes": "few archs"})
    )
    page = report(fake_run).read_text(encoding="utf-8")
    section = page.split('id="validation"')[1].split("</section>")[0]
    assert "validation file unreadable" in section and "not a valid validation record" in section
    assert "samples is not a list" in section and "lut validate CONFIG" in section
    assert "Cost-model validation: not run" not in section
    assert not (fake_run / "figures" / "cost_validation_host.png").exists()


def test_cli_report_prints_table_and_path(
    fake_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(fake_run)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"report: {fake_run / 'report.html'}"
    assert pareto_markdown(fake_run) in out  # raw Markdown, ready to paste


# --------------------------------------------------------------------------- missing stages


@pytest.mark.parametrize(
    ("remove", "needle"),
    [
        (["pareto.json"], "not finalised (no pareto.json); run `harmonic-nas search CONFIG`"),
        (["pareto.json", "candidates.json"], "stage 'search' is missing"),
        (["pareto.json", "candidates.json", "supernets"], "stage 'pretrain' is missing"),
        (["config.yaml"], "is not a run directory (no config.yaml)"),
    ],
)
def test_missing_stage_is_one_line_exit_2(
    fake_run: Path, remove: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    for rel in remove:
        p = fake_run / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    with pytest.raises(StageMissingError, match=re.escape(needle)):
        report(fake_run)
    assert main(["report", str(fake_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err
    assert len(err.splitlines()) == 1
    assert not (fake_run / "report.html").exists()


def test_missing_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "run directory not found" in capsys.readouterr().err


# --------------------------------------------------------------------------- helpers


def test_front_2d_min_max() -> None:
    pts = [(1.0, 0.5), (2.0, 0.9), (1.5, 0.4), (3.0, 0.95), (2.5, 0.8)]
    # latency (min) vs accuracy (max): 1.0/0.5, 2.0/0.9, 3.0/0.95
    assert front_2d(pts, max_x=False, max_y=True) == [0, 1, 3]
    # both minimised: only (1.0, 0.5) and (1.5, 0.4)
    assert front_2d(pts, max_x=False, max_y=False) == [0, 2]


def test_validation_stats() -> None:
    s = validation_stats([1.0, 2.0, 4.0], [1.0, 2.0, 5.0])
    assert s["mape_pct"] == pytest.approx(100 * (0.2 / 3))
    assert s["spearman"] == pytest.approx(1.0) and s["kendall_tau"] == pytest.approx(1.0)
    swapped = validation_stats([1.0, 3.0, 2.0], [1.0, 2.0, 3.0])
    assert swapped["kendall_tau"] == pytest.approx(1 / 3)


def test_validation_pairs_from_the_hardware_record() -> None:
    """``lut validate`` writes samples with predicted_ms/measured_ms plus the arch and its keys."""
    arch = {"modalities": {"image": {"preset": "avmnist", "shape": [1, 28, 28]}}, "C": 8, "L": 4}
    obj = {
        "schema_version": 1,
        "device": "host",
        "backend": "torch",
        "threads": 1,
        "seed": 0,
        "summary": {
            "samples": 2,
            "mape_pct": 4.0,
            "kendall_tau": 1.0,
            "drift_corrected": {"mape_pct": 3.0},
        },
        "samples": [
            {"predicted_ms": 1.0, "measured_ms": 1.1, "arch": arch, "predicted_keys": ["k"]},
            {"predicted_ms": 2.0, "measured_ms": 1.9, "arch": arch, "predicted_keys": []},
        ],
    }
    record = ValidationRecord.from_json(obj)
    assert validation_pairs(record) == {"latency": ([1.0, 2.0], [1.1, 1.9])}
    rows = dict(validation_summary(record))
    assert rows["summary.mape_pct"] == "4" and rows["summary.drift_corrected.mape_pct"] == "3"
    assert rows["samples"] == "list of 2" and rows["device"] == "host"
    assert validation_pairs(ValidationRecord.from_json({**obj, "samples": []})) == {}


def test_report_of_a_real_search_run(tmp_path: Path) -> None:
    """The real search machinery (synthetic problem: no training) writes the artifacts; the report
    reads them as they are, including another strategy's front and undrawable genotypes."""
    from harmonic_nas.config import parse_config
    from harmonic_nas.search import run_search
    from harmonic_nas.testing.synthetic_problem import SyntheticFactory

    cfg = parse_config(
        {
            "name": "syn",
            "run_dir": str(tmp_path),
            "seed": 7,
            "modalities": {
                "image": {"preset": "avmnist", "shape": [1, 28, 28]},
                "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
            },
            "search": {"population": 4, "generations": 2},
        }
    )
    run_search(cfg, problem=SyntheticFactory(tiny=True))
    run_search(cfg, problem=SyntheticFactory(tiny=True), strategy="random")
    art = load_run(cfg.run_path)
    assert art.members and set(art.other_strategies) == {"random"}
    page = report(cfg.run_path).read_text(encoding="utf-8")
    strategies = page.split("<h3>Search strategies</h3>")[1].split("</table>")[0]
    assert "nsga2 (this run)" in strategies and "<td>random</td>" in strategies
    for m in art.members:
        assert f"★ {m.id}" in page
    # the synthetic problem's genotypes are placeholders: each diagram says why it is missing
    assert page.count("diagram unavailable") == len(art.members)
    assert "Supernet training curves: not run" in page
    assert len(_embedded_images(page)) == 4  # 3 projections + hypervolume


# --------------------------------------------------------------------------- issue 13 item 5


def four_cell_member_and_a_dominating_baseline(run: Path) -> tuple[str, str]:
    """Give the first Pareto member a 4-cell x 3-node fusion genotype and add a baseline that
    dominates the slowest member; returns (4-cell member id, dominated member id)."""
    pareto_path = run / "pareto.json"
    pareto = json.loads(pareto_path.read_text())
    members = pareto["members"]
    wide = members[0]
    cells = [
        {
            "inputs": [i, i + 1],
            "nodes": [
                {"op": "Sum", "inputs": [0, 1]},
                {"op": "ConcatFC", "inputs": [2, 0]},
                {"op": "SE1", "inputs": [3, 1]},
            ],
        }
        for i in range(4)
    ]
    wide["arch"] = {**wide["arch"], "cells": 4, "nodes": 3}
    wide["arch"]["genotype"] = {"cells": cells, "multiplier": 2}
    pareto_path.write_text(json.dumps(pareto))
    slow = max(members, key=lambda m: m["latency_ms"])
    base_path = run / "baselines.json"
    baselines = json.loads(base_path.read_text())
    baselines["baselines"].append(
        {
            "name": "strong baseline",
            "val_metric": 1.0,
            "test_metric": 1.0,
            "latency_ms": slow["latency_ms"],
            "energy_mj": slow["energy_mj"],
            "params": 1000,
        }
    )
    base_path.write_text(json.dumps(baselines))
    return wide["id"], slow["id"]


def test_report_explains_its_notation_and_flags_dominated_members(fake_run: Path) -> None:
    wide_id, slow_id = four_cell_member_and_a_dominating_baseline(fake_run)
    page = report(fake_run).read_text(encoding="utf-8")
    assert "<b>Backbone genome</b>" in page and "d2 k53 e63" in page
    assert "expand ratio" in page and "kernel size" in page
    assert "Fusion genotype" in page and "x2</code>: the outputs of the last 2 cells" in page
    # the flags column of the dominated member names the baseline, and a note counts them
    pareto = page.split('id="pareto"')[1].split("</section>")[0]
    row = next(r for r in pareto.split("<tr>") if f'data-v="{slow_id}"' in r)
    assert "dominated by baseline strong baseline" in row
    assert "Pareto members are dominated by a baseline" in pareto
    # the 4-cell diagram is never shrunk below 75 % of its pixels (its box scrolls instead)
    archs = page.split('id="architectures"')[1].split("</section>")[0]
    card = next(c for c in archs.split('<div class="arch">') if f"{wide_id} —" in c)
    m = re.search(r'style="min-width:(\d+)px; max-width:(\d+)px"', card)
    assert m is not None
    assert int(m.group(1)) == round(0.75 * int(m.group(2)))
    assert int(m.group(2)) > 1200  # a 4-cell diagram: wider than a grid column ever was
    assert '<div class="archs">' in archs and '<div class="grid">' not in archs


def test_dominance_needs_both_objectives_no_worse() -> None:
    from harmonic_nas.results._artifacts import ParetoMember
    from harmonic_nas.results._format import dominated_by_baselines

    def member(ident: str, val: float, lat: float) -> ParetoMember:
        return ParetoMember(ident, None, {}, val, None, None, lat, None, None, None, None)

    members = [member("a", 0.9, 1.0), member("b", 0.8, 0.5), member("c", 0.95, 2.0)]
    baselines = [
        {"name": "equal", "val_metric": 0.9, "latency_ms": 1.0},
        {"name": "fast-weak", "val_metric": 0.7, "latency_ms": 0.1},
        {"name": "no-latency", "val_metric": 1.0, "latency_ms": None},
    ]
    assert dominated_by_baselines(members, baselines) == {"a": ["equal"]}
    assert dominated_by_baselines(members, None) == {}


def test_pareto_legend_has_one_entry_per_member_colour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    from harmonic_nas.results import _plots

    captured: list[Figure] = []
    real_save = _plots._save

    def keep(fig: Figure, path: Path) -> Path:
        captured.append(fig)
        return real_save(fig, path)

    members = [_plots.Point(f"m{i}", 0.8 + i / 100, 1.0 - i / 10, None) for i in range(3)]
    ax_val = _plots.Axis("val", "val", True)
    ax_lat = _plots.Axis("latency", "latency", False)
    monkeypatch.setattr(_plots, "_save", keep)
    _plots.pareto_projection(tmp_path / "p.png", ax_lat, ax_val, [], members, [])
    (legend,) = captured[0].legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["Pareto: m0", "Pareto: m1", "Pareto: m2"]
    colours = [tuple(h.get_facecolor()[0][:3]) for h in legend.legend_handles]
    from matplotlib.colors import to_rgb

    assert colours == [to_rgb(_plots.member_color(i)) for i in range(3)]


def test_report_says_energy_is_modelled_and_flags_members(fake_run: Path) -> None:
    pareto_path = fake_run / "pareto.json"
    pareto = json.loads(pareto_path.read_text())
    pareto["energy"] = {
        "source": "model:constant power 15 W x latency",
        "modelled": True,
        "objective": False,
    }
    first, second = pareto["members"][0], pareto["members"][1]
    first.update(missing_modalities=["audio"], uncosted_keys=["FusionHead-x"], val_metric_std=0.01)
    second.update(predicted_keys=["CellNorm-x", "FusionReshape-y"])
    pareto_path.write_text(json.dumps(pareto))
    cands_path = fake_run / "candidates.json"
    cands = json.loads(cands_path.read_text())
    cands["candidates"][0].update(fidelity="low", fusion_epochs=[9, 9])
    cands["candidates"][1].update(fidelity="low", fusion_epochs=[0, 0])  # fidelity: screen
    cands_path.write_text(json.dumps(cands))
    page = report(fake_run).read_text(encoding="utf-8")
    assert "Energy is modelled, not measured" in page and "15 W x latency" in page
    # no straight energy-vs-latency line, no "lowest energy" card equal to "fastest"
    assert "pareto latency energy" not in page and "lowest energy" not in page
    section = page.split('id="pareto"')[1].split("</section>")[0]
    row1 = next(r for r in section.split("<tr>") if f'data-v="{first["id"]}"' in r)
    assert "ignores audio" in row1 and "1 layer(s) not costed" in row1
    assert f"{first['val_metric']:.4f} ± 0.0100" in row1  # std only where re-scored
    row2 = next(r for r in section.split("<tr>") if f'data-v="{second["id"]}"' in r)
    assert "2 layer cost(s) predicted" in row2 and "±" not in row2.split("</td>")[1]
    assert "low (9+9 ep)" in page.split('id="candidates"')[1]
    assert "low (screen)" in page.split('id="candidates"')[1]


def test_a_late_fusion_member_is_named_in_the_genotype_column() -> None:
    from harmonic_nas.results._format import genotype_string

    assert genotype_string({"fusion_mode": "late", "genotype": None}).startswith("late fusion")
    assert genotype_string({"fusion_mode": "network", "genotype": None}) == ""


def test_a_late_fusion_member_has_no_diagram_and_says_why(tmp_path: Path) -> None:
    from harmonic_nas.results._figures import draw_architecture

    why = draw_architecture({"fusion_mode": "late", "genotype": None}, tmp_path / "a.png")
    assert why is not None and why.startswith("late fusion") and not (tmp_path / "a.png").exists()
