"""Front metrics that can fail: the one place where a search is measured against its controls.

The protocol (README, "How the search is measured"):

* **The box** (:class:`Box`), fixed per seed and recorded: the val-metric axis runs from
  ``acc_floor`` (the best single modality's val score: a multimodal model below it is of no use)
  to ``acc_ideal`` (1.0); the latency axis from ``lat_ideal`` (0, or a recorded ideal) to
  ``lat_ceiling`` (the slower of late-fusion-avg and bm-nas-max); optionally an energy axis
  likewise. Coordinates are normalised so that the ideal corner is 0 and the box's far edge 1.
* **Hypervolume** (:func:`front_hv`): the exact hypervolume of a strategy's front inside the box,
  as a fraction of the box (1.0 = a point at the ideal corner). A point on or beyond the floor or
  the ceiling adds nothing.
* **A ratio** (:func:`hv_comparison`): ``HV(a) / HV(b)`` for a strategy ``a`` against a control
  ``b`` on the same seed, box, supernets and table, with the difference ``HV(a) - HV(b)`` beside
  it. A control whose HV is 0 gives no ratio (``control_hv_zero``): the comparison is then judged
  by the difference.
* **IGD+** (:func:`igd_plus`, Ishibuchi et al., EMO 2015): the mean over the points of a reference
  front of the distance (only the objectives where the front is worse count) to the nearest point
  of the front, in the box's normalised coordinates; the reference is the union front of every
  strategy run on that seed (:func:`union_front`). 0 = the front covers the reference.
* **Bootstrap intervals** (:func:`bootstrap_hv`): per seed, the val samples are resampled with
  replacement once per replicate, every candidate of every strategy is re-scored on that
  resample from its saved per-sample predictions (:mod:`harmonic_nas.tasks`), every front and
  HV recomputed; the 90 % percentile interval of the replicates is the ratio's interval. The mean
  over seeds gets the interval of the mean of the per-seed replicates
  (:func:`mean_over_seeds_interval`).
* **When a target is met** (:func:`interval_met`, :func:`judge_ratio`): its value meets the target
  **and** its interval excludes "no effect" (``_ci_low > 1.0`` for a ratio, ``> 0`` for a
  difference). :func:`control_also_meets` says whether a control reaches the same target (then
  the figure is no evidence for the search).
* The normalisation the studies record (val metric from 0, latency and energy to 1.2 x an upper
  bound of the whole space) stays available as a labelled secondary figure
  (:func:`legacy_normalised_hv`).

Every record is a small frozen dataclass with ``to_json`` / ``from_json``, so any of these figures
can be recomputed from a saved benchmark file alone.
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np

from harmonic_nas.search.attrs import FIDELITY_LOW
from harmonic_nas.search.pareto import non_dominated, normalise, normalised_hypervolume
from harmonic_nas.tasks import TASKS, Task, resampled_metric

logger = logging.getLogger(__name__)

CONFIDENCE: Final[float] = 0.90
"""the coverage of every interval (a two-sided percentile interval: 5th to 95th percentile)"""

MAX_PRED_ELEMENTS: Final[int] = 50_000_000
"""bound on the size of one saved prediction array (checked before decoding it)"""

SCORE_TOLERANCE: Final[float] = 1e-6
"""how far a candidate's recorded val metric may be from the one its predictions give"""

BOX_DEFINITION: Final[str] = (
    "val metric axis from acc_floor (the best single modality's val score) to acc_ideal; "
    "latency axis from lat_ideal to lat_ceiling (the slower of late-fusion-avg and bm-nas-max); "
    "energy axis (when present) from energy_ideal to energy_ceiling; each axis mapped linearly "
    "ideal -> 0, floor / ceiling -> 1; hypervolume as a fraction of the box (1.0 = the ideal "
    "corner); a point on or beyond the floor or a ceiling adds nothing"
)

_ARRAY_DTYPES: Final[dict[str, type[np.generic]]] = {
    "uint8": np.uint8,
    "uint16": np.uint16,
    "int64": np.int64,
}


# --- serialisation of per-sample predictions ------------------------------------------------------


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """A non-negative integer array as JSON: bit-packed when every value is 0/1 (multilabel),
    else the smallest of uint8 / uint16 / int64, base64 of its little-endian bytes."""
    arr = np.asarray(a)
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) and arr.dtype != np.bool_):
        raise ValueError(f"predictions must be integers (class indices or 0/1), got {arr.dtype}")
    if arr.size and int(arr.min()) < 0:
        raise ValueError("predictions must be non-negative (class indices or 0/1)")
    hi = int(arr.max()) if arr.size else 0
    shape = [int(s) for s in arr.shape]
    if hi <= 1:
        raw = np.packbits(arr.astype(np.uint8).ravel()).tobytes()
        kind = "bits"
    else:
        kind = "uint8" if hi < 2**8 else "uint16" if hi < 2**16 else "int64"
        raw = arr.astype(np.dtype(_ARRAY_DTYPES[kind]).newbyteorder("<")).tobytes()
    return {"encoding": kind, "shape": shape, "data": base64.b64encode(raw).decode("ascii")}


def decode_array(obj: Mapping[str, Any]) -> np.ndarray:
    """The array :func:`encode_array` wrote; its size is checked against the data before any
    allocation beyond the bytes themselves."""
    try:
        kind, shape, data = str(obj["encoding"]), [int(s) for s in obj["shape"]], obj["data"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"a saved prediction array needs encoding, shape and data ({exc})"
        ) from exc
    if any(s < 0 for s in shape):
        raise ValueError(f"a saved prediction array has a negative dimension: {shape}")
    n = math.prod(shape)
    if n > MAX_PRED_ELEMENTS:
        raise ValueError(
            f"a saved prediction array of {n} values exceeds {MAX_PRED_ELEMENTS}: "
            "not a prediction file of this project"
        )
    raw = base64.b64decode(str(data), validate=True)
    if kind == "bits":
        if len(raw) != (n + 7) // 8:
            raise ValueError(f"a saved bit array of shape {shape} has {len(raw)} bytes")
        return np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=n).reshape(shape)
    if kind not in _ARRAY_DTYPES:
        raise ValueError(f"unknown prediction encoding {kind!r} (bits, uint8, uint16, int64)")
    dt = np.dtype(_ARRAY_DTYPES[kind]).newbyteorder("<")
    if len(raw) != n * dt.itemsize:
        raise ValueError(f"a saved {kind} array of shape {shape} has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dt).astype(_ARRAY_DTYPES[kind]).reshape(shape)


# --- records --------------------------------------------------------------------------------------


def _finite(name: str, v: float) -> float:
    out = float(v)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {v}")
    return out


@dataclass(frozen=True)
class Box:
    """The instrument's normalisation, fixed per seed (see the module docstring).

    ``floor_source`` / ``ceiling_source`` say where the floor and the ceilings come from (e.g.
    ``image`` and ``bm-nas-max``) so that the JSON explains itself.
    """

    acc_floor: float
    lat_ceiling: float
    acc_ideal: float = 1.0
    lat_ideal: float = 0.0
    energy_ceiling: float | None = None
    energy_ideal: float = 0.0
    floor_source: str = ""
    ceiling_source: str = ""

    def __post_init__(self) -> None:
        if not _finite("acc_floor", self.acc_floor) < _finite("acc_ideal", self.acc_ideal):
            raise ValueError(
                f"the box's acc_floor {self.acc_floor} must be below acc_ideal {self.acc_ideal}"
            )
        if not _finite("lat_ideal", self.lat_ideal) < _finite("lat_ceiling", self.lat_ceiling):
            raise ValueError(
                f"the box's lat_ceiling {self.lat_ceiling} must be above lat_ideal {self.lat_ideal}"
            )
        if self.energy_ceiling is not None and not _finite(
            "energy_ideal", self.energy_ideal
        ) < _finite("energy_ceiling", self.energy_ceiling):
            raise ValueError(
                f"the box's energy_ceiling {self.energy_ceiling} must be above energy_ideal "
                f"{self.energy_ideal}"
            )

    @classmethod
    def for_seed(
        cls,
        single_modality_val: Mapping[str, float],
        ceiling_latency_ms: Mapping[str, float],
        *,
        ceiling_energy_mj: Mapping[str, float] | None = None,
        lat_ideal: float = 0.0,
        energy_ideal: float = 0.0,
    ) -> Box:
        """The protocol's box: the floor is the best of ``single_modality_val`` (each modality's
        val score), the latency ceiling the slowest of ``ceiling_latency_ms`` (late-fusion-avg and
        bm-nas-max), the energy ceiling (optional) the dearest of ``ceiling_energy_mj``."""
        if not single_modality_val or not ceiling_latency_ms:
            raise ValueError("a box needs at least one single-modality score and one ceiling")
        floor_src = max(single_modality_val, key=lambda k: single_modality_val[k])
        ceil_src = max(ceiling_latency_ms, key=lambda k: ceiling_latency_ms[k])
        energy = max(ceiling_energy_mj.values()) if ceiling_energy_mj else None
        return cls(
            acc_floor=float(single_modality_val[floor_src]),
            lat_ceiling=float(ceiling_latency_ms[ceil_src]),
            lat_ideal=lat_ideal,
            energy_ceiling=energy,
            energy_ideal=energy_ideal,
            floor_source=floor_src,
            ceiling_source=ceil_src,
        )

    @property
    def has_energy(self) -> bool:
        return self.energy_ceiling is not None

    @property
    def ideal(self) -> tuple[float, ...]:
        """The ideal corner as a minimisation vector ``(-val, latency[, energy])``."""
        out = (-self.acc_ideal, self.lat_ideal, self.energy_ideal)
        return out if self.has_energy else out[:2]

    @property
    def reference(self) -> tuple[float, ...]:
        """The far corner (floor, ceilings) as a minimisation vector."""
        out = (-self.acc_floor, self.lat_ceiling, self.energy_ceiling or 0.0)
        return out if self.has_energy else out[:2]

    def with_floor(self, acc_floor: float) -> Box:
        """The same box with another floor (a bootstrap replicate's)."""
        return replace(self, acc_floor=float(acc_floor))

    def normalised(self, points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
        """Minimisation vectors in the box's coordinates: ideal -> 0, floor / ceiling -> 1, clipped
        to ``[0, 1]`` (nothing earns credit beyond the ideal or loses more beyond the box)."""
        arr = np.asarray(points, dtype=float).reshape(-1, len(self.ideal))
        if len(arr) == 0:
            return arr
        return np.minimum(np.asarray(normalise(arr.tolist(), self.ideal, self.reference)), 1.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "acc_floor": self.acc_floor,
            "acc_ideal": self.acc_ideal,
            "lat_ceiling": self.lat_ceiling,
            "lat_ideal": self.lat_ideal,
            "energy_ceiling": self.energy_ceiling,
            "energy_ideal": self.energy_ideal,
            "floor_source": self.floor_source,
            "ceiling_source": self.ceiling_source,
            "definition": BOX_DEFINITION,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Box:
        try:
            return cls(
                acc_floor=float(data["acc_floor"]),
                lat_ceiling=float(data["lat_ceiling"]),
                acc_ideal=float(data.get("acc_ideal", 1.0)),
                lat_ideal=float(data.get("lat_ideal", 0.0)),
                energy_ceiling=(
                    None if data.get("energy_ceiling") is None else float(data["energy_ceiling"])
                ),
                energy_ideal=float(data.get("energy_ideal", 0.0)),
                floor_source=str(data.get("floor_source", "")),
                ceiling_source=str(data.get("ceiling_source", "")),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"a saved box needs acc_floor and lat_ceiling ({exc})") from exc


@dataclass(frozen=True, eq=False)
class Candidate:
    """One evaluated candidate of one strategy on one seed, as a benchmark saves it.

    ``val_metric`` is maximised, ``latency_ms`` (and ``energy_mj`` when it is an objective)
    minimised. ``fidelity`` is ``full`` or ``low`` (multi-fidelity, not promoted: never on a
    front), ``feasible`` False for a candidate over a hard budget (never on a front).
    ``val_pred`` holds its per-sample val predictions (:func:`harmonic_nas.tasks.task_predictions`:
    classification ``(n,)`` class indices, multilabel ``(n, classes)`` 0/1), with a leading seed
    axis when ``val_metric`` is the mean over several seeds' models (a re-scored front member):
    the bootstrap re-scores the candidate from them.
    """

    id: str
    strategy: str
    val_metric: float
    latency_ms: float
    energy_mj: float | None = None
    fidelity: str = "full"
    feasible: bool = True
    genome: dict[str, Any] | None = None
    val_pred: np.ndarray | None = None

    @property
    def on_front(self) -> bool:
        """Whether the candidate may be on a front: full fidelity, feasible, finite objectives."""
        vals = (self.val_metric, self.latency_ms, 0.0 if self.energy_mj is None else self.energy_mj)
        return (
            self.feasible
            and self.fidelity != FIDELITY_LOW
            and all(math.isfinite(float(v)) for v in vals)
        )

    def minimised(self, energy: bool = False) -> tuple[float, ...]:
        """``(-val_metric, latency_ms[, energy_mj])``."""
        if not energy:
            return (-float(self.val_metric), float(self.latency_ms))
        if self.energy_mj is None:
            raise ValueError(
                f"candidate {self.id} ({self.strategy}) has no energy_mj but the box has an "
                "energy axis: record every candidate's energy or use a box without one"
            )
        return (-float(self.val_metric), float(self.latency_ms), float(self.energy_mj))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "strategy": self.strategy,
            "val_metric": self.val_metric,
            "latency_ms": self.latency_ms,
            "energy_mj": self.energy_mj,
            "fidelity": self.fidelity,
            "feasible": self.feasible,
        }
        if self.genome is not None:
            out["genome"] = self.genome
        if self.val_pred is not None:
            out["val_pred"] = encode_array(self.val_pred)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Candidate:
        try:
            pred = data.get("val_pred")
            return cls(
                id=str(data["id"]),
                strategy=str(data["strategy"]),
                val_metric=float(data["val_metric"]),
                latency_ms=float(data["latency_ms"]),
                energy_mj=None if data.get("energy_mj") is None else float(data["energy_mj"]),
                fidelity=str(data.get("fidelity", "full")),
                feasible=bool(data.get("feasible", True)),
                genome=dict(data["genome"]) if data.get("genome") is not None else None,
                val_pred=None if pred is None else decode_array(pred),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(
                f"a saved candidate needs id, strategy, val_metric and latency_ms ({exc})"
            ) from exc


def candidates_to_json(strategies: Mapping[str, Sequence[Candidate]]) -> dict[str, Any]:
    """``{strategy: [candidate, ...]}`` as JSON (the per-seed sidecar of a benchmark)."""
    return {name: [c.to_json() for c in cands] for name, cands in strategies.items()}


def candidates_from_json(data: Mapping[str, Any]) -> dict[str, list[Candidate]]:
    """The inverse of :func:`candidates_to_json`."""
    return {str(name): [Candidate.from_json(c) for c in cands] for name, cands in data.items()}


@dataclass(frozen=True)
class HvComparison:
    """A strategy ``a`` against a control ``b``: both hypervolumes in the box, their ratio (None
    when the control's HV is 0: ``control_hv_zero``, judge by the difference) and difference."""

    hv_a: float
    hv_b: float

    @property
    def control_hv_zero(self) -> bool:
        return self.hv_b <= 0.0

    @property
    def ratio(self) -> float | None:
        return None if self.control_hv_zero else self.hv_a / self.hv_b

    @property
    def difference(self) -> float:
        return self.hv_a - self.hv_b

    def to_json(self) -> dict[str, Any]:
        return {
            "hv_a": self.hv_a,
            "hv_b": self.hv_b,
            "ratio": self.ratio,
            "difference": self.difference,
            "control_hv_zero": self.control_hv_zero,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HvComparison:
        return cls(hv_a=float(data["hv_a"]), hv_b=float(data["hv_b"]))


@dataclass(frozen=True)
class Interval:
    """A two-sided percentile interval of bootstrap replicates."""

    low: float
    high: float
    confidence: float = CONFIDENCE

    def to_json(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "confidence": self.confidence}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Interval:
        return cls(
            float(data["low"]), float(data["high"]), float(data.get("confidence", CONFIDENCE))
        )


# --- fronts, hypervolume, IGD+ --------------------------------------------------------------------


def front_points(cands: Sequence[Candidate], *, energy: bool = False) -> list[Candidate]:
    """The non-dominated candidates among those that may be on a front (:attr:`Candidate.on_front`),
    on ``(val, latency[, energy])``, sorted by latency."""
    pool = [c for c in cands if c.on_front]
    if not pool:
        return []
    idx = non_dominated([c.minimised(energy) for c in pool])
    return sorted((pool[i] for i in idx), key=lambda c: (c.latency_ms, -c.val_metric, c.id))


def _hv_of_points(points: np.ndarray, box: Box) -> float:
    """HV in ``box`` of minimisation vectors (rows), dominated ones included or not."""
    if len(points) == 0:
        return 0.0
    front = points[non_dominated(points)]
    return normalised_hypervolume(front.tolist(), box.ideal, box.reference)


def front_hv(cands: Sequence[Candidate], box: Box) -> float:
    """Hypervolume of the candidates' front in ``box``, as a fraction of the box (0 .. 1)."""
    pool = [c for c in cands if c.on_front]
    return _hv_of_points(np.asarray([c.minimised(box.has_energy) for c in pool], dtype=float), box)


def hv_comparison(a: Sequence[Candidate], b: Sequence[Candidate], box: Box) -> HvComparison:
    """Strategy ``a``'s front against control ``b``'s in the same box."""
    return HvComparison(hv_a=front_hv(a, box), hv_b=front_hv(b, box))


def union_front(
    strategies: Mapping[str, Sequence[Candidate]], *, energy: bool = False
) -> list[Candidate]:
    """The front of the union of every strategy's candidates (IGD+'s reference)."""
    return front_points([c for cands in strategies.values() for c in cands], energy=energy)


def igd_plus(
    front: Sequence[Candidate], reference_front: Sequence[Candidate], box: Box
) -> float | None:
    """IGD+ (Ishibuchi, Masuda, Tanigaki, Nojima, EMO 2015) of ``front`` to ``reference_front``.

    In the box's normalised coordinates clipped to ``[0, 1]`` (:meth:`Box.normalised`): for each
    point ``r`` of the reference's non-dominated set, ``d+(a, r) = sqrt(sum_i max(a_i - r_i, 0)^2)``
    to the nearest point ``a`` of the front; IGD+ is their mean (0: the front weakly dominates every
    reference point). Reference points outside the box (on or beyond the floor or a ceiling) are
    left out, as they add no HV either; the front's points outside it count at its edge. None when
    the front has no candidate that may be on a front, or the reference none inside the box.
    """
    energy = box.has_energy
    f = box.normalised([c.minimised(energy) for c in front if c.on_front])
    r = box.normalised([c.minimised(energy) for c in reference_front if c.on_front])
    r = r[np.all(r < 1.0, axis=1)]
    if len(f) == 0 or len(r) == 0:
        return None
    r = r[non_dominated(r)]
    gap = np.maximum(f[None, :, :] - r[:, None, :], 0.0)
    d = np.sqrt((gap**2).sum(axis=2)).min(axis=1)
    return float(d.mean())


def legacy_normalised_hv(
    cands: Sequence[Candidate],
    ideal_point: Mapping[str, float],
    reference_point: Mapping[str, float],
    *,
    energy: bool = False,
) -> float:
    """The normalisation each study records (secondary figure, labelled as such): the val metric
    from ``reference_point['val_metric']`` (0) to ``ideal_point['val_metric']`` (1), latency (and
    energy when it is an objective) from the smallest genome's lower bound to 1.2 x an upper bound
    of every candidate of the space (``study.user_attrs['ideal_point' / 'reference_point']``, as
    :func:`harmonic_nas.search.final.study_points` returns them); the same figure as
    ``hypervolume.json`` and ``benchmarks/search_quality.py``'s ``hv_curve``."""
    k = 3 if energy else 2
    lo = (-ideal_point["val_metric"], ideal_point["latency_ms"], ideal_point["energy_mj"])[:k]
    hi = (
        -reference_point["val_metric"],
        reference_point["latency_ms"],
        reference_point["energy_mj"],
    )[:k]
    front = front_points(cands, energy=energy)
    return normalised_hypervolume([c.minimised(energy) for c in front], lo, hi)


# --- intervals ------------------------------------------------------------------------------------


def percentile_interval(
    replicates: np.ndarray | Sequence[float], confidence: float = CONFIDENCE
) -> Interval | None:
    """The two-sided percentile interval of bootstrap replicates; None when any replicate is not
    finite (a ratio whose control HV was 0 in that replicate)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    arr = np.asarray(replicates, dtype=float)
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        return None
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(arr, [tail, 1.0 - tail])
    return Interval(float(lo), float(hi), confidence)


def mean_over_seeds_interval(
    per_seed_replicates: Sequence[np.ndarray], confidence: float = CONFIDENCE
) -> Interval | None:
    """The interval of the mean over seeds: replicate ``r`` of the mean is the mean over seeds of
    each seed's replicate ``r`` (every seed bootstrapped with the same ``n_boot``). None when a
    replicate is not finite (judge by the differences' interval instead)."""
    if not per_seed_replicates:
        raise ValueError("mean_over_seeds_interval needs the replicates of at least one seed")
    arrs = [np.asarray(r, dtype=float).ravel() for r in per_seed_replicates]
    sizes = {len(a) for a in arrs}
    if len(sizes) != 1:
        raise ValueError(
            f"every seed needs the same number of replicates, got {sorted(sizes)}: bootstrap "
            "every seed with the same n_boot"
        )
    return percentile_interval(np.mean(np.stack(arrs), axis=0), confidence)


# --- bootstrap ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BootstrapComparison:
    """Strategy ``a`` against control ``b`` on one seed, with the bootstrap replicates of the
    ratio (NaN where the control's replicate HV is 0) and of the difference."""

    a: str
    b: str
    point: HvComparison
    ratios: np.ndarray
    differences: np.ndarray
    confidence: float = CONFIDENCE

    @property
    def control_zero_replicates(self) -> int:
        """Replicates in which the control's HV is 0 (no ratio there)."""
        return int(np.sum(~np.isfinite(self.ratios)))

    @property
    def ratio_interval(self) -> Interval | None:
        """None when the control's HV is 0 in any replicate: judge by the difference."""
        return percentile_interval(self.ratios, self.confidence)

    @property
    def difference_interval(self) -> Interval | None:
        return percentile_interval(self.differences, self.confidence)

    def to_json(self, *, replicates: bool = True) -> dict[str, Any]:
        ri, di = self.ratio_interval, self.difference_interval
        out: dict[str, Any] = {
            "a": self.a,
            "b": self.b,
            **self.point.to_json(),
            "confidence": self.confidence,
            "ratio_ci": None if ri is None else [ri.low, ri.high],
            "difference_ci": None if di is None else [di.low, di.high],
            "control_zero_replicates": self.control_zero_replicates,
        }
        if replicates:
            out["ratio_replicates"] = [None if not math.isfinite(v) else v for v in self.ratios]
            out["difference_replicates"] = [float(v) for v in self.differences]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BootstrapComparison:
        """Needs the replicates (``to_json(replicates=True)``)."""
        ratios = [math.nan if v is None else float(v) for v in data["ratio_replicates"]]
        return cls(
            a=str(data["a"]),
            b=str(data["b"]),
            point=HvComparison.from_json(data),
            ratios=np.asarray(ratios, dtype=float),
            differences=np.asarray(data["difference_replicates"], dtype=float),
            confidence=float(data.get("confidence", CONFIDENCE)),
        )


@dataclass(frozen=True, eq=False)
class HvBootstrap:
    """Every strategy's HV on one seed, on the val split itself (``point``) and in each bootstrap
    replicate (``replicates[strategy]``, ``(n_boot,)``). ``floors`` holds each replicate's floor
    when it was resampled too (else the box's floor was kept fixed)."""

    box: Box
    n_boot: int
    seed: int
    point: dict[str, float]
    replicates: dict[str, np.ndarray]
    floors: np.ndarray | None = None

    @property
    def floor_resampled(self) -> bool:
        return self.floors is not None

    def compare(self, a: str, b: str, confidence: float = CONFIDENCE) -> BootstrapComparison:
        """Strategy ``a`` against control ``b`` on the same replicates."""
        for name in (a, b):
            if name not in self.point:
                raise ValueError(
                    f"no strategy {name!r} in this bootstrap (have {sorted(self.point)})"
                )
        ra, rb = self.replicates[a], self.replicates[b]
        ratios = np.full(self.n_boot, math.nan)
        np.divide(ra, rb, out=ratios, where=rb > 0)
        return BootstrapComparison(
            a=a,
            b=b,
            point=HvComparison(self.point[a], self.point[b]),
            ratios=ratios,
            differences=ra - rb,
            confidence=confidence,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "box": self.box.to_json(),
            "n_boot": self.n_boot,
            "seed": self.seed,
            "floor_resampled": self.floor_resampled,
            "point": dict(self.point),
            "replicates": {k: [float(x) for x in v] for k, v in self.replicates.items()},
            "floors": None if self.floors is None else [float(x) for x in self.floors],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HvBootstrap:
        n_boot = int(data["n_boot"])
        reps = {str(k): np.asarray(v, dtype=float) for k, v in data["replicates"].items()}
        if any(len(v) != n_boot for v in reps.values()):
            raise ValueError(f"a saved bootstrap's replicates must each hold n_boot={n_boot}")
        floors = data.get("floors")
        return cls(
            box=Box.from_json(data["box"]),
            n_boot=n_boot,
            seed=int(data["seed"]),
            point={str(k): float(v) for k, v in data["point"].items()},
            replicates=reps,
            floors=None if floors is None else np.asarray(floors, dtype=float),
        )


def _resampled_scores(
    pred: np.ndarray, labels: np.ndarray, task: Task, counts: np.ndarray
) -> np.ndarray:
    """Per-replicate scores of one candidate; a leading seed axis is averaged over."""
    base = 1 if task == "classification" else 2
    p = np.asarray(pred)
    if p.ndim == base:
        return resampled_metric(p, labels, task, counts)
    if p.ndim == base + 1:
        return np.asarray(np.mean([resampled_metric(s, labels, task, counts) for s in p], axis=0))
    raise ValueError(
        f"{task} predictions must be {base}-D per sample (or {base + 1}-D with a leading seed "
        f"axis), got shape {p.shape}"
    )


def score_predictions(pred: np.ndarray, labels: np.ndarray, task: Task) -> float:
    """A candidate's val score from its saved predictions (a leading seed axis averaged over):
    the figure :func:`bootstrap_hv` checks its ``val_metric`` against."""
    y = np.asarray(labels)
    return float(_resampled_scores(pred, y, task, np.ones((1, len(y))))[0])


def bootstrap_hv(
    strategies: Mapping[str, Sequence[Candidate]],
    labels: np.ndarray,
    task: Task,
    box: Box,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    floor_preds: Mapping[str, np.ndarray] | None = None,
    tolerance: float = SCORE_TOLERANCE,
) -> HvBootstrap:
    """Bootstrap every strategy's HV on one seed by resampling the val split.

    Per replicate the val indices are drawn once, with replacement (``numpy`` generator seeded
    with ``seed``: the same seed gives the same replicates); every candidate of every strategy
    that may be on a front is re-scored on that resample from its ``val_pred`` (the task's
    metric, :func:`harmonic_nas.tasks.resampled_metric`), and each strategy's front and HV are
    recomputed. Latency and energy are not resampled (they come from the device table).

    The box's floor stays fixed (the protocol: fixed per seed) unless ``floor_preds`` is given:
    the per-sample val predictions of each single modality, whose best score on each resample is
    then that replicate's floor. Every candidate's recorded ``val_metric`` (and the box's floor,
    with ``floor_preds``) must be what its predictions give on the whole split (within
    ``tolerance``): the predictions must describe the scored model.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} (one of {', '.join(TASKS)})")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    y = np.asarray(labels)
    n = len(y)
    if n == 0:
        raise ValueError("the bootstrap needs the val labels (got none)")
    energy = box.has_energy
    pools: dict[str, list[Candidate]] = {}
    preds: dict[str, list[np.ndarray]] = {}
    for name, cands in strategies.items():
        pool = [c for c in cands if c.on_front]
        preds[name] = []
        for c in pool:
            if c.val_pred is None:
                raise ValueError(
                    f"candidate {c.id} of {name} has no val predictions: save every candidate's "
                    "val_pred to bootstrap its strategy"
                )
            preds[name].append(c.val_pred)
            got = score_predictions(c.val_pred, y, task)
            if abs(got - c.val_metric) > tolerance:
                raise ValueError(
                    f"candidate {c.id} of {name}: its val predictions score {got:.6f} but its "
                    f"val_metric is {c.val_metric:.6f}: save the predictions of the scored model"
                )
        pools[name] = pool
    if floor_preds is not None:
        if not floor_preds:
            raise ValueError("floor_preds is empty: pass each single modality's val predictions")
        floor_full = max(score_predictions(p, y, task) for p in floor_preds.values())
        if abs(floor_full - box.acc_floor) > tolerance:
            raise ValueError(
                f"the single modalities' predictions give a floor of {floor_full:.6f} but the "
                f"box's acc_floor is {box.acc_floor:.6f}: build the box from the same scores"
            )

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = (idx + n * np.arange(n_boot)[:, None]).ravel()
    counts = np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)

    scores = {
        name: np.stack([_resampled_scores(p, y, task, counts) for p in ps])
        if ps
        else np.zeros((0, n_boot))
        for name, ps in preds.items()
    }
    floors = None
    if floor_preds is not None:
        floors = np.max(
            np.stack([_resampled_scores(p, y, task, counts) for p in floor_preds.values()]),
            axis=0,
        )
    base = {
        name: np.asarray([c.minimised(energy) for c in pool], dtype=float).reshape(
            -1, len(box.ideal)
        )
        for name, pool in pools.items()
    }
    reps = {name: np.zeros(n_boot) for name in pools}
    for r in range(n_boot):
        rbox = box
        if floors is not None:
            if floors[r] >= box.acc_ideal:
                continue  # no room above the floor: every HV is 0
            rbox = box.with_floor(floors[r])
        for name, pts in base.items():
            if len(pts) == 0:
                continue
            pts[:, 0] = -scores[name][:, r]
            reps[name][r] = _hv_of_points(pts, rbox)
    point = {name: front_hv(pool, box) for name, pool in pools.items()}
    logger.debug("bootstrap: %d replicates of %d strategies", n_boot, len(pools))
    return HvBootstrap(
        box=box, n_boot=n_boot, seed=seed, point=point, replicates=reps, floors=floors
    )


def bootstrap_hv_ratio(
    strategies: Mapping[str, Sequence[Candidate]],
    a: str,
    b: str,
    labels: np.ndarray,
    task: Task,
    box: Box,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    floor_preds: Mapping[str, np.ndarray] | None = None,
    confidence: float = CONFIDENCE,
) -> BootstrapComparison:
    """:func:`bootstrap_hv` then :meth:`HvBootstrap.compare` ``(a, b)``: strategy ``a`` against
    control ``b``, both re-scored on the same resamples (every strategy is resampled together)."""
    boot = bootstrap_hv(
        strategies, labels, task, box, n_boot=n_boot, seed=seed, floor_preds=floor_preds
    )
    return boot.compare(a, b, confidence)


# --- targets --------------------------------------------------------------------------------------


def _meets(value: float, goal: float, op: str) -> bool:
    if op == ">=":
        return value >= goal
    if op == "<=":
        return value <= goal
    raise ValueError(f"a target with an interval needs op '>=' or '<=', got {op!r}")


def interval_met(
    value: float | None,
    ci_low: float | None,
    ci_high: float | None,
    goal: float,
    op: str,
    *,
    no_effect: float = 1.0,
) -> bool:
    """The rule for a target with an interval: the value meets ``goal`` under ``op`` **and** the
    interval excludes ``no_effect`` on the right side (``ci_low > no_effect`` for ``>=``,
    ``ci_high < no_effect`` for ``<=``; 1.0 for a ratio, 0.0 for a difference). A missing value
    or interval is never met."""
    if value is None:
        return False
    met = _meets(float(value), goal, op)
    if op == ">=":
        return met and ci_low is not None and ci_low > no_effect
    return met and ci_high is not None and ci_high < no_effect


def control_also_meets(control_values: Mapping[str, float | None], goal: float, op: str) -> bool:
    """Whether any control's value of the same figure meets ``goal`` (interval not required: a
    control that reaches the value makes the figure no evidence for the search)."""
    return any(v is not None and _meets(float(v), goal, op) for v in control_values.values())


def judge_ratio(cmp: BootstrapComparison, goal: float) -> dict[str, Any]:
    """A ``>=`` ratio target from a bootstrap comparison: the fields of its ``targets`` entry
    (``value``, ``met``, ``_ci_low``, ``_ci_high``, the difference and its interval,
    ``control_hv_zero``, ``judged_by``).

    * the control's HV is 0 on the val split: no ratio; met when the difference is > 0 and its
      interval's low end too (``judged_by: difference``);
    * the control's HV is 0 in some replicate only: the ratio must meet ``goal`` and the
      difference's interval must exclude 0 (``judged_by: ratio+difference``);
    * otherwise the ratio must meet ``goal`` with ``_ci_low > 1.0`` (``judged_by: ratio``).
    """
    ri, di = cmp.ratio_interval, cmp.difference_interval
    d_low, d_high = (None, None) if di is None else (di.low, di.high)
    ratio = cmp.point.ratio
    if ratio is None:
        judged = "difference"
        met = interval_met(cmp.point.difference, d_low, d_high, 0.0, ">=", no_effect=0.0)
    elif ri is None:
        judged = "ratio+difference"
        met = ratio >= goal and d_low is not None and d_low > 0.0
    else:
        judged = "ratio"
        met = interval_met(ratio, ri.low, ri.high, goal, ">=", no_effect=1.0)
    return {
        "value": ratio,
        "met": bool(met),
        "_ci_low": None if ri is None else ri.low,
        "_ci_high": None if ri is None else ri.high,
        "difference": cmp.point.difference,
        "_difference_ci_low": d_low,
        "_difference_ci_high": d_high,
        "control_hv_zero": cmp.point.control_hv_zero,
        "judged_by": judged,
    }


__all__ = [
    "BOX_DEFINITION",
    "CONFIDENCE",
    "BootstrapComparison",
    "Box",
    "Candidate",
    "HvBootstrap",
    "HvComparison",
    "Interval",
    "bootstrap_hv",
    "bootstrap_hv_ratio",
    "candidates_from_json",
    "candidates_to_json",
    "control_also_meets",
    "decode_array",
    "encode_array",
    "front_hv",
    "front_points",
    "hv_comparison",
    "igd_plus",
    "interval_met",
    "judge_ratio",
    "legacy_normalised_hv",
    "mean_over_seeds_interval",
    "percentile_interval",
    "score_predictions",
    "union_front",
]
