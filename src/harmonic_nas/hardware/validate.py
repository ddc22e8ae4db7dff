"""How wrong is the LUT? Random architectures of the space, measured end to end vs the LUT sum.

Each sample is a random multimodal architecture: one random subnet per modality (uniform genes)
and a random fusion macro-architecture (cells, nodes in the configured ranges) with a random
genotype over the configured operators. It is built as a :class:`~harmonic_nas.fusion.MultimodalNet`
with random weights (latency does not depend on the values), run with the LUT's backend and threads
at batch size 1, and compared with ``CostModel(lut).cost_arch(arch).total``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy.stats import kendalltau
from torch import nn

from harmonic_nas.backbones import build_supernet
from harmonic_nas.errors import ConfigError, LUTError
from harmonic_nas.hardware.backends import interleaved_latencies
from harmonic_nas.hardware.cost import CostModel
from harmonic_nas.hardware.cuda_timing import lut_timing_device, timing_runner
from harmonic_nas.hardware.inventory import arch_feature_shapes
from harmonic_nas.hardware.lut import LUT
from harmonic_nas.hardware.profiler import latency_stats, reference_runner
from harmonic_nas.hardware.validation_record import ValidationRecord
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.seeding import numpy_rng
from harmonic_nas.utils.threads import torch_threads

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.fusion import ArchSpec, FusionGenotype, MultimodalNet

logger = logging.getLogger(__name__)

#: what a trustworthy table achieves on random architectures (Kendall tau, MAPE of the total)
TARGET_TAU = 0.9
TARGET_MAPE_PCT = 5.0
CANNOT_TELL = "cannot tell on this machine"


def agreement(a: Sequence[float], b: Sequence[float]) -> dict[str, float | None]:
    """Kendall tau and MAPE of ``a`` against ``b`` (the reference)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    tau = float(kendalltau(x, y).statistic) if len(x) >= 2 else float("nan")
    return {
        "kendall_tau": None if math.isnan(tau) else tau,
        "mape_pct": float(np.mean(np.abs(x - y) / y) * 100.0),
    }


def verdict(
    lut: dict[str, float | None], retiming: dict[str, float | None]
) -> dict[str, bool | str]:
    """Met / missed against :data:`TARGET_TAU` and :data:`TARGET_MAPE_PCT`; ``inconclusive`` when
    the machine's own re-timing of the same models misses them (its noise floor is above the
    targets: a miss then says nothing about the table)."""

    def meets(m: dict[str, float | None]) -> bool:
        tau, mape = m["kendall_tau"], m["mape_pct"]
        return (
            tau is not None and tau >= TARGET_TAU and mape is not None and mape <= TARGET_MAPE_PCT
        )

    inconclusive = not meets(retiming)
    met = meets(lut)
    text = (
        CANNOT_TELL
        if inconclusive and not met
        else ("met" if met else "missed")
        + (" (the re-timing itself misses the targets)" if inconclusive and met else "")
    )
    return {"met": met, "inconclusive": inconclusive, "verdict": text}


def random_genotype(
    cells: int,
    nodes: int,
    ops: Sequence[str],
    n_points: int,
    multiplier: int,
    rng: np.random.Generator,
) -> FusionGenotype:
    """A uniformly random valid genotype: each cell reads two different earlier states, each
    node two inner states before it, with a random operator."""
    from harmonic_nas.fusion import CellGenotype, FusionGenotype, NodeGenotype

    def pair(n: int) -> tuple[int, int]:
        if n < 2:
            return (0, 0)
        a, b = rng.choice(n, size=2, replace=False)
        return int(a), int(b)

    out = []
    for i in range(cells):
        node_list = tuple(
            NodeGenotype(op=str(ops[int(rng.integers(len(ops)))]), inputs=pair(2 + j))
            for j in range(nodes)
        )
        out.append(CellGenotype(inputs=pair(n_points + i), nodes=node_list))
    return FusionGenotype(cells=tuple(out), multiplier=min(multiplier, cells))


def random_arch(cfg: ExperimentConfig, rng: np.random.Generator, n_classes: int) -> ArchSpec:
    """A random architecture of ``cfg``'s space (backbones + macro-architecture + genotype)."""
    from harmonic_nas.backbones import BackboneSpace
    from harmonic_nas.fusion import ArchSpec, ModalityArch, point_refs

    mods = {}
    for name, m in cfg.modalities.items():
        genome = BackboneSpace.from_preset(m.preset).sample(rng)
        mods[name] = ModalityArch(m.preset, tuple(m.shape), genome)
    cells = int(rng.integers(cfg.search.cells[0], cfg.search.cells[1] + 1))
    nodes = int(rng.integers(cfg.search.nodes[0], cfg.search.nodes[1] + 1))
    fc = cfg.fusion
    arch = ArchSpec(
        modalities=mods,
        cells=cells,
        nodes=nodes,
        C=fc.C,
        L=fc.L,
        fusion_points=fc.fusion_points,
        n_classes=n_classes,
        late_skip=fc.late_skip,
    )
    n_points = len(point_refs(arch, arch_feature_shapes(arch)))
    genotype = random_genotype(cells, nodes, fc.ops, n_points, fc.multiplier, rng)
    return arch.with_genotype(genotype)


class ModelBuilder:
    """Builds :class:`MultimodalNet` models of an architecture with random weights (supernets
    are built once per modality)."""

    def __init__(self) -> None:
        self._supernets: dict[tuple[str, str, tuple[int, ...], int], nn.Module] = {}

    def __call__(self, arch: ArchSpec) -> MultimodalNet:
        from harmonic_nas.fusion import FixedFusionNet, MultimodalNet, point_refs
        from harmonic_nas.fusion.points import pooled_shape

        if arch.genotype is None:
            raise ConfigError("a model needs a fusion genotype")
        backbones: dict[str, nn.Module] = {}
        for name, ma in arch.modalities.items():
            key = (name, ma.preset, tuple(ma.shape), arch.n_classes)
            if key not in self._supernets:
                self._supernets[key] = build_supernet(
                    (None, ma.shape), ma.preset, arch.n_classes, name
                )
            sn = self._supernets[key]
            backbones[name] = sn.extract(ma.genome).eval()  # type: ignore[operator]
        shapes = arch_feature_shapes(arch)
        points = [pooled_shape(shapes[m][k], arch.L) for m, k in point_refs(arch, shapes)]
        fusion = FixedFusionNet.for_arch(arch, points)
        return MultimodalNet(arch, backbones, fusion).eval()


@dataclass
class ValidationResult:
    """Predicted (LUT) vs measured latency over random architectures."""

    device: str
    backend: str
    threads: int
    predicted_ms: list[float]
    measured_ms: list[float]
    archs: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0
    speed_ratio: float | None = None
    retimed_ms: list[float] = field(default_factory=list)
    raw_predicted_ms: list[float] = field(default_factory=list)

    @property
    def corrected_ms(self) -> list[float]:
        """Predictions scaled by the machine's speed now vs during profiling (reference model)."""
        r = 1.0 if self.speed_ratio is None else self.speed_ratio
        return [p * r for p in self.predicted_ms]

    @property
    def errors_pct(self) -> np.ndarray:
        p, m = np.asarray(self.predicted_ms), np.asarray(self.measured_ms)
        return np.asarray(100.0 * (p - m) / m)

    @property
    def mape(self) -> float:
        return float(np.mean(np.abs(self.errors_pct)))

    @property
    def kendall_tau(self) -> float:
        if len(self.predicted_ms) < 2:
            return float("nan")
        return float(kendalltau(self.predicted_ms, self.measured_ms).statistic)

    @property
    def worst(self) -> tuple[int, float]:
        """(sample index, signed % error) of the largest absolute error."""
        e = self.errors_pct
        i = int(np.argmax(np.abs(e)))
        return i, float(e[i])

    @property
    def within_10pct(self) -> float:
        return float(np.mean(np.abs(self.errors_pct) <= 10.0) * 100.0)

    def summary(self) -> dict[str, Any]:
        i, e = self.worst
        tau = self.kendall_tau
        out: dict[str, Any] = {
            "samples": len(self.predicted_ms),
            "mape_pct": self.mape,
            "kendall_tau": None if math.isnan(tau) else tau,
            "worst_error_pct": e,
            "worst_index": i,
            "within_10pct": self.within_10pct,
            "mean_bias_pct": float(np.mean(self.errors_pct)),
            "speed_ratio": self.speed_ratio,
        }
        if self.raw_predicted_ms:
            out["raw_sum"] = agreement(self.raw_predicted_ms, self.measured_ms)
        if self.retimed_ms:
            retiming = agreement(self.retimed_ms, self.measured_ms)
            out["retiming"] = retiming
            out.update(
                verdict({"kendall_tau": out["kendall_tau"], "mape_pct": self.mape}, retiming)
            )
        if self.speed_ratio is not None:
            c = np.asarray(self.corrected_ms)
            m = np.asarray(self.measured_ms)
            err = 100.0 * (c - m) / m
            out["drift_corrected"] = {
                "mape_pct": float(np.mean(np.abs(err))),
                "worst_error_pct": float(err[int(np.argmax(np.abs(err)))]),
                "within_10pct": float(np.mean(np.abs(err) <= 10.0) * 100.0),
                "mean_bias_pct": float(np.mean(err)),
            }
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "backend": self.backend,
            "threads": self.threads,
            "seed": self.seed,
            "summary": self.summary(),
            "samples": [
                {"predicted_ms": p, "measured_ms": m, **a}
                for p, m, a in zip(self.predicted_ms, self.measured_ms, self.archs, strict=True)
            ],
        }


def validate_lut(
    cfg: ExperimentConfig,
    lut: LUT,
    *,
    samples: int = 50,
    seed: int | None = None,
    n_classes: int | None = None,
    repeats: int | None = None,
    fallback: bool = False,
    chunk: int = 25,
    progress: ProgressFn = no_progress,
) -> ValidationResult:
    """Compare the LUT's prediction with end-to-end measurements of ``samples`` random archs.

    The LUT must have been profiled on this machine (backend, threads and machine identity;
    not an imported table). Every model is timed twice: the second pass (the re-timing) says
    how well the machine agrees with itself now, and a miss of the targets that the re-timing
    misses too is ``inconclusive`` ("cannot tell on this machine"), not a failure.
    Models are built in chunks of ``chunk`` and timed round-robin within a chunk
    (:func:`~harmonic_nas.hardware.backends.interleaved_latencies`), like the profiler.
    """
    from harmonic_nas.hardware.inventory import config_n_classes

    if lut.device.backend not in ("onnxruntime", "torch"):
        raise LUTError(
            f"the LUT of '{lut.device.name}' was not profiled here (backend "
            f"{lut.device.backend!r}); validate it on the device it describes"
        )
    if samples < 2:
        raise ConfigError("validation needs at least 2 samples")
    from harmonic_nas.hardware.lut_source import foreign_table

    provider = lut.device.identity.provider if lut.device.identity else cfg.device.provider
    foreign = foreign_table(lut, lut.device.backend, max(lut.device.threads, 1), provider)
    if foreign is not None:
        raise LUTError(
            f"the LUT of '{lut.device.name}' describes another machine ({foreign}); validate it "
            "on the machine it describes, or re-profile here (`harmonic-nas profile CONFIG`)"
        )
    n = config_n_classes(cfg) if n_classes is None else n_classes
    seed = cfg.seed if seed is None else seed
    rng = numpy_rng(seed, "lut-validate")
    model_cost = CostModel(lut, fallback=fallback)
    builder = ModelBuilder()
    backend, threads = lut.device.backend, max(lut.device.threads, 1)
    compute = lut_timing_device(lut.meta.get("timed_on"))  # where the table was timed
    reps = repeats or max(cfg.device.repeats, 50)
    archs = [random_arch(cfg, rng, n) for _ in range(samples)]
    costs = [model_cost.cost_arch(a) for a in archs]
    measured: list[float] = []
    retimed: list[float] = []
    reference_samples: list[float] = []
    task = f"validating {lut.device.name}"
    progress(task, 0, samples)
    with torch_threads(threads):
        reference = reference_runner(backend, threads, compute, provider)
        for lo in range(0, samples, chunk):
            part = archs[lo : lo + chunk]
            runners = []
            for i, arch in enumerate(part, start=lo):
                gen = torch.Generator().manual_seed(i)
                inputs = tuple(
                    torch.randn((1, *ma.shape), generator=gen) for ma in arch.modalities.values()
                )
                runners.append(
                    timing_runner(builder(arch), inputs, backend, threads, compute, provider)
                )
            lat = interleaved_latencies([reference, *runners], cfg.device.warmup, reps)
            again = interleaved_latencies([reference, *runners], 0, reps)  # the re-timing
            reference_samples += lat[0]
            measured += [latency_stats(x).value for x in lat[1:]]
            retimed += [latency_stats(x).value for x in again[1:]]
            progress(task, lo + len(part), samples)
            del runners
    return ValidationResult(
        lut.device.name,
        backend,
        threads,
        [c.total.latency_ms for c in costs],
        measured,
        [
            {"arch": a.to_json(), "predicted_keys": list(c.predicted_keys)}
            for a, c in zip(archs, costs, strict=True)
        ],
        seed,
        speed_ratio=_speed_ratio(lut, reference_samples),
        retimed_ms=retimed,
        raw_predicted_ms=[c.raw_total.latency_ms for c in costs],
    )


def _speed_ratio(lut: LUT, samples: list[float]) -> float | None:
    """How much slower the machine is now than while profiling (reference model latency)."""
    then = lut.meta.get("reference_ms")
    if not isinstance(then, int | float) or then <= 0 or not samples:
        return None
    return float(latency_stats(samples).value / then)


def save_validation(result: ValidationResult, folder: Path) -> tuple[Path, Path]:
    """``<device>.validation.json`` and a predicted-vs-measured scatter ``.png`` in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    json_path = ValidationRecord.of(result).save(folder / f"{result.device}.validation.json")
    png = folder / f"{result.device}.validation.png"
    s = result.summary()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(result.measured_ms, result.predicted_ms, s=14, alpha=0.8)
    lo = min(min(result.measured_ms), min(result.predicted_ms)) * 0.95
    hi = max(max(result.measured_ms), max(result.predicted_ms)) * 1.05
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.plot([lo, hi], [lo * 1.1, hi * 1.1], ":", color="grey", lw=1, label="±10 %")
    ax.plot([lo, hi], [lo * 0.9, hi * 0.9], ":", color="grey", lw=1)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured end-to-end latency (ms)")
    ax.set_ylabel("LUT prediction (ms)")
    tau = s["kendall_tau"]
    ax.set_title(
        f"{result.device} ({result.backend}, {result.threads} thr): "
        f"MAPE {s['mape_pct']:.1f} %, τ {tau if tau is None else round(tau, 3)}",
        fontsize=9,
    )
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    tmp = png.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(png)
    return json_path, png
