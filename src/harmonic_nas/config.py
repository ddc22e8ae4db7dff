"""The experiment file: pydantic models, YAML in, validated, resolved copy saved in the run dir.

One place per fact: the paper's defaults live here (fusion C=192, L=16, multiplier 2, 25 epochs,
arch lr 3e-4, weight lr 1e-4 -> 1e-6 with cosine warm restarts, dropout 0.1).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from harmonic_nas.errors import ConfigError
from harmonic_nas.utils.credentials import redact
from harmonic_nas.utils.io import DuplicateKeyError, atomic_write_text, load_yaml
from harmonic_nas.utils.names import NAME_RULE, modality_name_problem, name_problem

CONFIG_SCHEMA_VERSION = 1

ModalityKind = Literal["image", "audio", "text", "vector", "signal"]

#: How modalities meet in a candidate (``search.fusion_modes``): ``late`` = no fusion network, the
#: backbones' own classifiers combined by Bayes' rule (``late-fusion-bayes``); ``network`` = the
#: searched fusion network alone (backbone layers after its deepest fusion point do not run);
#: ``network+late`` = the fusion network plus the mean of the backbones' logits (``late_skip``).
FusionMode = Literal["late", "network", "network+late"]

# Strict scalars: YAML already gives real ints, floats and bools, so nothing is coerced (``true``
# is not the integer 1, ``"5"`` is not 5); floats must be finite (``allow_inf_nan=False`` below).
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DatasetConfig(_Strict):
    """Which dataset, where it lives (real datasets) and its builder options."""

    name: str = "av-digits"
    path: Path | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class ModalityConfig(_Strict):
    """One modality: its backbone preset and the input shape the backbone sees (C, H, W) or (D,).

    An experiment file may leave ``preset`` out: :class:`ExperimentConfig` fills in the default
    preset of the modality's kind (:func:`fill_presets`), so a validated config always names it.
    """

    preset: str
    shape: tuple[Int, ...]
    kind: ModalityKind | None = None
    normalization: Literal["scalar", "channel"] | None = Field(
        None,
        description="standardise with one train mean/std per modality (scalar) or per channel / "
        "feature (channel); default: channel for signal and vector kinds, scalar otherwise",
    )

    @field_validator("shape")
    @classmethod
    def _positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(s <= 0 for s in v):
            raise ValueError("every dimension must be a positive integer")
        return v


class DeviceConfig(_Strict):
    """The target device and how its lookup table is made (profiling) or found (registry)."""

    name: str = "host"
    backend: Literal["onnxruntime", "torch"] = "onnxruntime"
    threads: Int = Field(1, ge=1)
    warmup: Int = Field(10, ge=0)
    repeats: Int = Field(50, ge=1)
    power_w: Float = Field(
        15.0,
        gt=0,
        allow_inf_nan=False,
        description="constant-power model when no energy sensor exists (finite, W)",
    )
    energy_source: Literal["auto", "rapl", "nvml", "jetson-ina3221", "model"] = "auto"
    fallback_predictor: Bool = False
    provider: str = Field(
        "CPUExecutionProvider",
        pattern=r"^[A-Za-z][A-Za-z0-9]*ExecutionProvider$",
        description="ONNX Runtime execution provider the onnxruntime backend times with",
    )
    calibration_models: Int = Field(
        20, ge=0, description="whole random models timed at profiling time to calibrate totals"
    )

    @field_validator("name")
    @classmethod
    def _device_name(cls, v: str) -> str:
        return _path_name(v)


class ComputeConfig(_Strict):
    """Where the networks train and run (not the target device): how a run executes, not what it
    computes, so it is not part of a study's or a supernet's identity."""

    device: str = Field("auto", description="auto (a GPU when visible), cpu, cuda or cuda:N")
    precision: Literal["fp32", "bf16", "fp16", "fp64"] = Field(
        "fp32",
        description="training precision: bf16/fp16 autocast (fp16 with a gradient scaler), or "
        "fp64 (supernet pretraining in double precision, for exact comparisons)",
    )

    @field_validator("device")
    @classmethod
    def _compute_device(cls, v: str) -> str:
        index = v.removeprefix("cuda:")
        if v not in ("auto", "cpu", "cuda") and not (
            index != v and index.isascii() and index.isdecimal()
        ):
            raise ValueError(f"{v!r} is not a compute device; use auto, cpu, cuda or cuda:N")
        return v


class PretrainConfig(_Strict):
    """Supernet training: sandwich rule + in-place distillation, cosine LR with warm-up."""

    epochs: Int = Field(30, ge=1)
    batch_size: Int = Field(64, ge=1)
    lr: Float = Field(5e-3, gt=0)
    weight_decay: Float = Field(3e-5, ge=0)
    warmup_epochs: Int = Field(1, ge=0)
    label_smoothing: Float = Field(0.1, ge=0, lt=1)
    n_random: Int = Field(2, ge=0, description="random subnets per step besides max and min")
    distill: Bool = True
    bn_recalib_batches: Int = Field(20, ge=0)
    reorder_channels: Bool = True
    full_epochs: Int | None = Field(
        None, ge=0, description="epochs training the max subnet alone first (None: warmup_epochs)"
    )
    distill_weight: Float = Field(
        0.5, ge=0, le=1, description="share of in-place distillation in the non-max subnets' loss"
    )
    threads: Int | None = Field(None, ge=1, description="torch CPU threads while pretraining")
    workers: Int = Field(
        0,
        ge=0,
        description="processes pretraining modalities side by side (0: one per modality, up to "
        "the CPU count; 1: one after the other)",
    )


class FusionConfig(_Strict):
    """Inner tier (DARTS over BM-NAS cells). Defaults are the paper's."""

    C: Int = Field(192, ge=1)
    L: Int = Field(16, ge=1)
    multiplier: Int = Field(2, ge=1)
    epochs: Int = Field(25, ge=1)
    retrain_epochs: Int = Field(25, ge=1)
    batch_size: Int = Field(96, ge=1)
    arch_lr: Float = Field(3e-4, gt=0)
    arch_weight_decay: Float = Field(1e-3, ge=0)
    weight_lr: Float = Field(1e-4, gt=0)
    weight_lr_min: Float = Field(1e-6, ge=0)
    weight_decay: Float = Field(1e-4, ge=0)
    restart_period: Int = Field(5, ge=1, description="T_0 of the cosine warm restarts, in epochs")
    dropout: Float = Field(0.1, ge=0, lt=1)
    late_skip: Bool = Field(
        True,
        description="the fusion network's output is added to the mean of the backbones' own "
        "(frozen, pretrained) classifier logits, so it learns a correction of late fusion and "
        "starts from it (false: the fusion network alone, as in the paper)",
    )
    mixup: Float = Field(
        0.4,
        ge=0,
        description="Beta(mixup, mixup) mixing of pairs of cached fusion points (and their "
        "labels) while retraining the discrete fusion network (0: off, as in the paper)",
    )
    fusion_points: Int = Field(4, ge=1, description="feature maps taken from each CNN backbone")
    ops: tuple[str, ...] = ("Sum", "ScaleDotAttn", "LinearGLU", "ConcatFC", "SE1", "CatConvMish")
    arch_split: Float = Field(
        0.3,
        ge=0,
        lt=1,
        description="share of train held out for the architecture steps and the choice of the "
        "search epoch (0: the reference code's protocol, architecture steps and every choice on "
        "val; kept for comparisons only)",
    )
    lambda_lat: Float = Field(
        1.0,
        ge=0,
        description="weight of the fusion operators' expected latency, as a fraction of the "
        "candidate's whole latency, in the architecture loss (0: plain DARTS)",
    )
    lambda_energy: Float = Field(
        1.0,
        ge=0,
        description="same for energy; ignored when the device's energy is modelled from latency",
    )
    threshold: Float = Field(0.5, gt=0, lt=1, description="multilabel decision threshold")
    fusion_split: Float = Field(
        0.0,
        ge=0,
        lt=1,
        description="share of train carved out (class-stratified, seeded) BEFORE pretraining: "
        "the supernets never train on it, the fusion network's weight and architecture steps "
        "use only it (0: off, the fusion network trains on the supernets' own train split)",
    )
    cells: Int = Field(2, ge=1, le=8, description="used by `harmonic-nas fusion`")
    nodes: Int = Field(2, ge=1, le=8, description="used by `harmonic-nas fusion`")

    @field_validator("ops")
    @classmethod
    def _some_ops(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("give at least one fusion operator, e.g. [Sum, ConcatFC]")
        if len(set(v)) != len(v):
            raise ValueError("list each fusion operator once")
        return v

    @model_validator(mode="after")
    def _check(self) -> FusionConfig:
        side = round(self.L**0.5)
        if side * side != self.L:
            raise ValueError(
                f"L must be a perfect square (feature maps are pooled to sqrt(L)^2), got {self.L}"
            )
        if self.weight_lr_min > self.weight_lr:
            raise ValueError("weight_lr_min must not exceed weight_lr")
        return self


class SearchConfig(_Strict):
    """Outer tier (NSGA-II on an Optuna study)."""

    strategy: Literal["nsga2", "random", "accuracy-only", "predictor"] = Field(
        "nsga2",
        description="nsga2: NSGA-II; random: random search (the baseline); accuracy-only: "
        "NSGA-II on the val metric alone; predictor: NSGA-II's first generation, then each "
        "candidate chosen by an accuracy predictor fitted on the evaluated ones, among genomes "
        "priced by the LUT (expected hypervolume gain in val metric x latency)",
    )
    population: Int = Field(16, description="NSGA-II population size (>= 2)")
    generations: Int = Field(4, ge=1)
    crossover_prob: Float = Field(0.9, ge=0, le=1)
    mutation_prob: Float | None = Field(None, ge=0, le=1)
    cells: tuple[Int, Int] = (1, 4)
    nodes: tuple[Int, Int] = (1, 4)
    latency_budget_ms: Float | None = Field(None, gt=0)
    energy_budget_mj: Float | None = Field(None, gt=0)
    storage: str | None = None
    storage_password_env: str | None = Field(
        None,
        description="environment variable holding the storage's password (never written to "
        "the run); without it, a password in `storage` is used but masked in every saved copy, "
        "and libpq's PGPASSWORD / ~/.pgpass apply",
    )
    study_name: str | None = None
    workers: Int = Field(1, ge=1)
    test_seeds: Int = Field(1, ge=1)
    rescore_seeds: Int = Field(
        1,
        ge=1,
        description="after the search, each Pareto member is re-evaluated on val with this many "
        "seeds in all (1 = off); its val metric becomes the mean, the std is recorded, and the "
        "front is recomputed on the means",
    )
    fidelity: Literal["full", "halving", "screen"] = Field(
        "full",
        description="full: every candidate gets the whole fusion search + retraining; halving: "
        "each first gets fidelity_fraction of the fusion epochs; screen: each is first screened "
        "without any fusion training (its subnets' own classifiers, logits averaged, on val; "
        "cost = the LUT lower bound). Either way only a candidate whose cheap score no earlier "
        "cheap score dominates is evaluated in full",
    )
    fidelity_fraction: Float = Field(
        1 / 3,
        gt=0,
        lt=1,
        description="share of fusion.epochs / fusion.retrain_epochs of the cheap evaluation "
        "(fidelity: halving)",
    )
    initial: Literal["ladder", "random"] = Field(
        "ladder",
        description="NSGA-II's first generation: ladder = half of it (population // 2, at least "
        "2) a ladder of genomes evenly spaced from the smallest to the largest, the rest random; "
        "random = all random (Optuna's default). Random search is always random",
    )
    require_all_modalities: Bool = Field(
        True,
        description="a candidate whose fusion reads no feature of some modality is infeasible "
        "(never a Pareto member); false keeps such unimodal members, flagged",
    )
    heartbeat_s: Int = Field(30, ge=1)
    fusion_modes: tuple[FusionMode, ...] | None = Field(
        None,
        description="how modalities may meet, a gene of the genome: any of late, network, "
        "network+late (null: no gene, every candidate uses fusion.late_skip as before)",
    )

    @field_validator("fusion_modes")
    @classmethod
    def _modes(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and (not v or len(set(v)) != len(v)):
            raise ValueError(
                "list each fusion mode once, at least one, e.g. [late, network]; or null"
            )
        return v

    @field_validator("study_name")
    @classmethod
    def _study_name(cls, v: str | None) -> str | None:
        return None if v is None else _path_name(v)

    @field_validator("population")
    @classmethod
    def _population(cls, v: int) -> int:
        if v < 2:
            raise ValueError("population must be at least 2 (NSGA-II needs parents to cross)")
        return v

    @field_validator("cells", "nodes")
    @classmethod
    def _range(cls, v: tuple[Int, Int]) -> tuple[Int, Int]:
        lo, hi = v
        if not 1 <= lo <= hi <= 8:
            raise ValueError("must be [low, high] with 1 <= low <= high <= 8")
        return v

    @property
    def budget(self) -> int:
        """Total number of candidates evaluated (population x generations)."""
        return self.population * self.generations


class ExperimentConfig(_Strict):
    """The whole experiment file."""

    name: str
    run_dir: Path = Path("runs")
    seed: Int = 0
    dataset: DatasetConfig = DatasetConfig()
    modalities: dict[str, ModalityConfig]
    device: DeviceConfig = DeviceConfig()
    pretrain: PretrainConfig = PretrainConfig()
    fusion: FusionConfig = FusionConfig()
    search: SearchConfig = SearchConfig()
    compute: ComputeConfig = ComputeConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_presets(cls, data: Any) -> Any:
        return fill_presets(data) if isinstance(data, dict) else data

    @field_validator("name")
    @classmethod
    def _inside_run_dir(cls, v: str) -> str:
        problem = name_problem(v)
        if problem is not None:
            raise ValueError(
                f"must name a directory inside run_dir, e.g. 'quick' (it {problem}; {NAME_RULE})"
            )
        return v

    @field_validator("modalities")
    @classmethod
    def _two_or_more(cls, v: dict[str, ModalityConfig]) -> dict[str, ModalityConfig]:
        for m in v:
            problem = modality_name_problem(m)
            if problem is not None:
                raise ValueError(problem)
        if len(v) < 2:
            raise ValueError("a multimodal search needs at least two modalities")
        return v

    @property
    def run_path(self) -> Path:
        """``<run_dir>/<name>``: where every artifact of this experiment goes."""
        return self.run_dir / self.name

    def section_hash(self, *sections: str) -> str:
        """A short content hash of some sections (plus the seed), to tell if an artifact is stale."""
        data = self.model_dump(mode="json")
        payload = {s: data[s] for s in sections}
        payload["seed"] = self.seed
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def fill_presets(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (an experiment file's mapping, not changed) with each omitted (or null)
    ``modalities.<m>.preset`` set to the default preset of the modality's kind
    (:func:`harmonic_nas.backbones.presets.default_preset`). The kind is ``modalities.<m>.kind``
    or else the dataset's, where its metadata gives it without building the dataset
    (:func:`harmonic_nas.preflight.dataset_kinds`); a config kind that contradicts the data is
    reported by the checks. Where neither gives it the key stays missing (an error names the fix).
    The filled preset is part of the resolved config, so it is saved with the run and enters
    every identity exactly as if it had been written."""
    mods = data.get("modalities")
    if not isinstance(mods, dict):
        return data
    missing = [m for m, mc in mods.items() if isinstance(mc, dict) and mc.get("preset") is None]
    if not missing:
        return data
    from harmonic_nas.backbones.presets import default_preset
    from harmonic_nas.preflight import dataset_kinds

    known: dict[str, tuple[str, bool]] | None = None
    filled = dict(mods)
    for m in missing:
        mc = {k: v for k, v in mods[m].items() if k != "preset"}
        kind = mc.get("kind")
        if known is None:
            try:
                known = dataset_kinds(DatasetConfig.model_validate(data.get("dataset") or {}))
            except ValidationError:  # reported with the config's other problems
                known = {}
        data_kind, raw_text = known.get(m, (kind, True))
        if kind is None:
            kind = data_kind
        if isinstance(kind, str) and kind in get_args(ModalityKind):
            mc["preset"] = default_preset(kind, raw_text=raw_text if kind == data_kind else True)
        filled[m] = mc
    return {**data, "modalities": filled}


def _path_name(v: str) -> str:
    """A name that becomes a path part (:mod:`harmonic_nas.utils.names`), for a validator."""
    problem = name_problem(v)
    if problem is not None:
        raise ValueError(f"it {problem}; {NAME_RULE}")
    return v


def _problem(err: Any, overridden: Mapping[str, str]) -> str:
    """One pydantic error as ``'<key>': <problem>[; <fix>]``, naming the ``-o`` pair it came from."""
    loc = ".".join(str(p) for p in err["loc"]) or "<root>"
    kind = err["type"]
    origin = next(
        (pair for key, pair in overridden.items() if loc == key or loc.startswith(key + ".")),
        None,
    )
    via = f" (from -o {origin})" if origin else ""
    if kind == "extra_forbidden":
        return f"unknown key '{loc}'{via}; remove it or check its spelling"
    if kind == "missing":
        parts = [str(p) for p in err["loc"]]
        if len(parts) == 3 and parts[0] == "modalities" and parts[2] == "preset":
            return (
                f"missing key '{loc}'{via}: the kind of modality '{parts[1]}' is not known "
                f"before the data stage; set modalities.{parts[1]}.kind (image, audio, signal, "
                f"vector or text: its default preset is used) or modalities.{parts[1]}.preset"
            )
        return f"missing required key '{loc}'{via}"
    given = err.get("input")
    shown = repr(given) if not isinstance(given, dict | list) else type(given).__name__
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"'{loc}': {err['msg']} (got {shown}){via}"


def format_problems(head: str, problems: Sequence[str]) -> str:
    """One problem: ``<head>: <problem>`` on one line; several: a summary line, then one per line.

    The shape of every multi-problem error of the package (config validation, preflight checks).
    """
    if len(problems) == 1:
        return f"{head}: {problems[0]}"
    lines = "".join(f"\n  - {p}" for p in problems)
    return f"{head}: {len(problems)} problems (each listed below; fix them all and rerun):{lines}"


def _format_validation_error(
    exc: ValidationError, source: str, overridden: Mapping[str, str] | None = None
) -> str:
    problems = list(dict.fromkeys(_problem(e, overridden or {}) for e in exc.errors()))
    return format_problems(f"invalid config {source}", problems)


def parse_config(
    data: Any, source: str = "<dict>", overridden: Mapping[str, str] | None = None
) -> ExperimentConfig:
    """Validate a mapping into an :class:`ExperimentConfig`.

    Every problem is reported at once in one :class:`ConfigError` (one line for a single one).
    ``overridden`` maps dotted keys set by ``-o key=value`` to their pair, to name them.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config {source}: the top level must be a mapping of keys")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source, overridden)) from None


def parse_override(pair: str) -> tuple[tuple[str, ...], Any]:
    """``"search.population=8"`` -> ``(("search", "population"), 8)``.

    The key is dotted (one part per nesting level); the value is parsed as YAML, so ``8`` is an
    int, ``0.3`` a float, ``true`` a bool, ``[1, 2]`` a list and ``null`` None; anything that is
    not valid YAML stays a string.
    """
    key, sep, raw = pair.partition("=")
    parts = tuple(p.strip() for p in key.split("."))
    if not sep or not all(parts):
        raise ConfigError(
            f"override '{pair}' is not of the form key=value; write a dotted key, e.g. "
            "-o search.population=8"
        )
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except DuplicateKeyError as exc:
        raise ConfigError(f"override '{pair}' has a {exc}") from None
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], pairs: Sequence[str]) -> dict[str, str]:
    """Set each ``key=value`` of ``pairs`` in ``data`` (in place, later pairs win), creating the
    intermediate mappings; returns ``{dotted key: pair}`` for the error messages."""
    done: dict[str, str] = {}
    for pair in pairs:
        parts, value = parse_override(pair)
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(
                    f"cannot apply -o {pair}: '{where}' is {type(child).__name__} "
                    f"{child!r}, not a mapping; override '{where}' itself"
                )
            node = child
        node[parts[-1]] = value
        done[".".join(parts)] = pair
    return done


def _read_yaml(path: Path, what: str, fix: str) -> Any:
    """Parse a YAML file; one-line ConfigError if it cannot be read, is not UTF-8 or not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start}); {fix}") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} {path}: {exc.strerror or exc.__class__.__name__}; "
            "check that it is a readable file"
        ) from None
    try:
        return load_yaml(text)
    except DuplicateKeyError as exc:
        raise ConfigError(f"{what} {path} has a {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{what} {path} is not valid YAML{where}; {fix}") from None


def load_config(
    path: Path | str,
    overrides: dict[str, Any] | None = None,
    *,
    sets: Sequence[str] = (),
) -> ExperimentConfig:
    """Read and validate a YAML experiment file.

    ``overrides`` are merged at the top level (a whole section replaces the file's);
    ``sets`` are ``-o key=value`` pairs with dotted keys (see :func:`parse_override`), applied
    after them and validated with the file: an unknown key is an error naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}; pass the path of a YAML experiment file")
    data = _read_yaml(path, "config", "fix the syntax (save it as UTF-8 YAML)")
    if (overrides or sets) and not isinstance(data, dict):
        raise ConfigError(f"invalid config {path}: the top level must be a mapping of keys")
    overridden: dict[str, str] = {}
    if overrides:
        data = {**data, **overrides}
    if sets:
        data = copy.deepcopy(data)
        overridden = apply_overrides(data, sets)
    return parse_config(data, str(path), overridden)


def config_data(cfg: ExperimentConfig) -> dict[str, Any]:
    """The resolved config as plain data, as it is saved: every default spelled out, and the
    storage URL's password masked (no credential is ever written)."""
    data = cfg.model_dump(mode="json")
    if data["search"].get("storage"):
        data["search"]["storage"] = redact(data["search"]["storage"])
    return data


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML (:func:`config_data`)."""
    data = config_data(cfg)
    return yaml.safe_dump({"schema_version": CONFIG_SCHEMA_VERSION, **data}, sort_keys=False)


def save_resolved(cfg: ExperimentConfig) -> Path:
    """Write the resolved config to ``<run>/config.yaml`` atomically and return its path."""
    return atomic_write_text(cfg.run_path / "config.yaml", dump_config(cfg))


def load_run_config(run: Path | str) -> ExperimentConfig:
    """Load the resolved config saved in a run directory."""
    path = Path(run) / "config.yaml"
    if not path.is_file():
        raise ConfigError(
            f"{run} is not a run directory (no config.yaml); run `harmonic-nas run CONFIG` first"
        )
    data = _read_yaml(
        path,
        "run config",
        "restore it (it is the resolved copy `harmonic-nas run` saved) or rerun "
        "`harmonic-nas run CONFIG` with the original experiment file",
    )
    if isinstance(data, dict):
        found = data.pop("schema_version", None)
        if found != CONFIG_SCHEMA_VERSION or isinstance(found, bool):
            raise ConfigError(
                f"run config {path} has schema_version {found!r}, expected "
                f"{CONFIG_SCHEMA_VERSION}; restore the copy `harmonic-nas run` saved, or rerun "
                "`harmonic-nas run CONFIG` with this version of harmonic-nas"
            )
    return parse_config(data, str(path))
