"""The hypervolume reference point (issue 11 item 6): it bounds the total cost of every candidate
(backbones, reshapes, operators, cell norms, head, overhead) with any genotype, and it depends on
the search space and the device table only. The cheap pass's lower bound (the screen's cost and
the ideal point) is below every candidate's cost, and with the late skip counts every backbone."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harmonic_nas.config import ExperimentConfig, parse_config
from harmonic_nas.fusion import CellGenotype, FusionGenotype, NodeGenotype, point_refs
from harmonic_nas.hardware.cost import CostModel
from harmonic_nas.hardware.inventory import arch_feature_shapes, space_layer_specs
from harmonic_nas.hardware.keys import lut_key
from harmonic_nas.hardware.lut import LUT, DeviceInfo, LUTEntry
from harmonic_nas.search.evaluator import REFERENCE_MARGIN, HarmonicProblem
from harmonic_nas.search.genome import MultimodalGenome

OPS = ("Sum", "ScaleDotAttn", "LinearGLU", "ConcatFC", "SE1", "CatConvMish")


def _cfg(tmp_path: Path, late_skip: bool = True) -> ExperimentConfig:
    return parse_config(
        {
            "name": "ref",
            "run_dir": str(tmp_path / "runs"),
            "modalities": {
                "image": {"preset": "avmnist", "shape": [1, 28, 28]},
                "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
            },
            "device": {"backend": "torch"},
            "fusion": {"C": 8, "L": 4, "ops": list(OPS), "late_skip": late_skip},
            "search": {"cells": [1, 3], "nodes": [1, 3]},
        }
    )


def _lut(cfg: ExperimentConfig, backend: str, rng: random.Random | None) -> LUT:
    """Every layer of the space: 1 ms / 2 mJ (flat), or random costs (``rng``: a table in which a
    bigger layer may be cheaper); the per-model overhead 0.5 ms, 1 mJ."""
    entries = {
        lut_key(s): (
            LUTEntry.point(1.0, 2.0)
            if rng is None
            else LUTEntry.point(rng.uniform(0.01, 3.0), rng.uniform(0.01, 3.0))
        )
        for s in space_layer_specs(cfg, 10)
    }
    return LUT(
        DeviceInfo("host", backend=backend, threads=1),
        "model:test",
        entries,
        overhead=LUTEntry.point(0.5, 1.0),
    )


def _problem(cfg: ExperimentConfig, lut: LUT) -> HarmonicProblem:
    prob = HarmonicProblem(cfg)
    prob.__dict__["cost_model"] = CostModel(lut)  # no profiling, no dataset
    prob.__dict__["n_classes"] = 10
    return prob


def _random_genotype(
    rng: random.Random, cells: int, nodes: int, n_points: int, multiplier: int | None = None
) -> FusionGenotype:
    out = []
    for i in range(cells):
        states = n_points + i
        inner = tuple(
            NodeGenotype(rng.choice(OPS), (rng.randrange(2 + j), rng.randrange(2 + j)))
            for j in range(nodes)
        )
        out.append(CellGenotype((rng.randrange(states), rng.randrange(states)), inner))
    return FusionGenotype(tuple(out), multiplier or rng.randint(1, cells))


def _random_genome(prob: HarmonicProblem, rng: random.Random) -> MultimodalGenome:
    params = {n: rng.choice(d.choices) for n, d in prob.space.distributions().items()}
    return prob.space.from_params(params).canonical()


def _total(
    prob: HarmonicProblem,
    genome: MultimodalGenome,
    rng: random.Random,
    multiplier: int | None = None,
) -> tuple[float, float]:
    arch = prob.arch_spec(genome)
    n_points = len(point_refs(arch, arch_feature_shapes(arch)))
    geno = _random_genotype(rng, genome.cells, genome.nodes, n_points, multiplier)
    total = prob.cost_model.cost_arch(arch.with_genotype(geno)).total
    return total.latency_ms, total.energy_mj


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
@pytest.mark.parametrize("table", ["flat", "random"])
def test_reference_point_bounds_every_candidate(tmp_path: Path, backend: str, table: str) -> None:
    cfg = _cfg(tmp_path)
    rng = random.Random(0)
    prob = _problem(cfg, _lut(cfg, backend, rng if table == "random" else None))
    bound = prob.space_upper_bound()
    ideal, ref = prob.reference_costs()
    assert ref.latency_ms == pytest.approx(bound.latency_ms * REFERENCE_MARGIN)
    assert ref.energy_mj == pytest.approx(bound.energy_mj * REFERENCE_MARGIN)
    worst = (0.0, 0.0)
    genomes = [prob.space.max_genome()] * 60 + [_random_genome(prob, rng) for _ in range(60)]
    for genome in genomes:
        lat, en = _total(prob, genome, rng)
        assert lat <= bound.latency_ms + 1e-9, genome.key()
        assert en <= bound.energy_mj + 1e-9, genome.key()
        worst = (max(worst[0], lat), max(worst[1], en))
    assert ideal.latency_ms <= worst[0]
    if table == "flat" and backend == "torch":
        # the bound is tight on a flat eager table: max genome, 6 distinct points read, 9 ops
        assert worst[0] <= bound.latency_ms
        assert bound.latency_ms - worst[0] <= 2.0


def test_reference_point_includes_every_costed_kind(tmp_path: Path) -> None:
    """On a flat eager table the bound counts each kind: backbones at max depth, 2 x 3 reshapes,
    3 x 3 operators, 3 cell norms, one head and the overhead."""
    cfg = _cfg(tmp_path)
    prob = _problem(cfg, _lut(cfg, "torch", None))
    n_backbone = 2 * 9  # avmnist at depth 4: stem, fixed, 4 blocks, expand, mix, classifier
    expected = n_backbone + 6 + 9 + 3 + 1
    bound = prob.space_upper_bound()
    assert bound.latency_ms == pytest.approx(expected + 0.5)
    assert bound.energy_mj == pytest.approx(2 * expected + 1.0)


def test_reference_point_depends_on_the_space_and_table_only(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    lut = _lut(cfg, "onnxruntime", random.Random(3))
    a, b = _problem(cfg, lut), _problem(cfg, lut)
    other = cfg.model_copy(update={"seed": 5})
    c = _problem(other, lut)
    assert a.reference_costs() == b.reference_costs() == c.reference_costs()


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
@pytest.mark.parametrize("late_skip", [True, False])
def test_lower_bound_is_below_every_candidate(
    tmp_path: Path, backend: str, late_skip: bool
) -> None:
    """The cheap pass's bound holds for any genotype the search can derive (head multiplier
    min(fusion.multiplier, cells)), on a random table where bigger layers may be cheaper."""
    cfg = _cfg(tmp_path, late_skip)
    rng = random.Random(1)
    prob = _problem(cfg, _lut(cfg, backend, rng))
    gap = []
    for genome in [prob.space.min_genome()] + [_random_genome(prob, rng) for _ in range(80)]:
        bound = prob.lower_bound(genome)
        mult = min(cfg.fusion.multiplier, genome.cells)
        lat, en = _total(prob, genome, rng, mult)
        assert bound.latency_ms <= lat + 1e-9, genome.key()
        assert bound.energy_mj <= en + 1e-9, genome.key()
        gap.append(lat - bound.latency_ms)
    assert min(gap) >= 0.0
    ideal, _ = prob.reference_costs()
    assert ideal == prob.lower_bound(prob.space.min_genome())


def test_lower_bound_counts_every_backbone_with_the_late_skip(tmp_path: Path) -> None:
    """On a pruning backend (flat table: 1 ms a layer, overhead 0.5 ms) the late skip keeps every
    backbone layer live: the bound is 2 x 9 backbone layers + min(2, cells) operators +
    overhead; without the skip only the shallowest prefix of one modality is sure to run."""
    genome = None
    bounds = {}
    for skip in (True, False):
        cfg = _cfg(tmp_path, skip)
        prob = _problem(cfg, _lut(cfg, "onnxruntime", None))
        genome = prob.space.max_genome()
        bounds[skip] = prob.lower_bound(genome)
    assert genome is not None
    n_ops = min(2, genome.cells)
    assert bounds[True].latency_ms == pytest.approx(2 * 9 + n_ops + 0.5)
    assert bounds[True].energy_mj == pytest.approx(2 * (2 * 9 + n_ops) + 1.0)
    assert bounds[False].latency_ms < bounds[True].latency_ms - 9


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_bounds_hold_with_a_calibrated_table(tmp_path: Path, backend: str) -> None:
    """Totals through the LUT's calibration (``a·Σ + w·weight bytes + c``, energy modelled as
    power x latency) stay within the lower bound and the reference point."""
    from harmonic_nas.hardware.calibration import Calibration

    cfg = _cfg(tmp_path)
    rng = random.Random(4)
    lut = _lut(cfg, backend, rng)
    for key, e in lut.entries.items():
        lut.entries[key] = LUTEntry.point(e.latency_ms, 15.0 * e.latency_ms)
    lut.calibration = Calibration("affine+weights", 1.3, 2e-6, -0.2)
    prob = _problem(cfg, lut)
    hi = prob.space_upper_bound()
    raw = prob._raw_upper_bound(prob.cost_model, list(prob.op_costs.values()))
    assert hi.latency_ms > 1.3 * raw.latency_ms - 0.2  # the weights term counts
    for genome in [prob.space.max_genome(), *(_random_genome(prob, rng) for _ in range(40))]:
        lo = prob.lower_bound(genome)
        lat, en = _total(prob, genome, rng, min(cfg.fusion.multiplier, genome.cells))
        assert lo.latency_ms <= lat + 1e-9 <= hi.latency_ms + 2e-9, genome.key()
        assert lo.energy_mj <= en + 1e-9 <= hi.energy_mj + 2e-9, genome.key()
