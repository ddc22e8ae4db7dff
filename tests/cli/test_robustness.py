"""The bad-input robustness table (issue 14): every bad input a user can hand the CLI, run
through the real entry point (:func:`harmonic_nas.cli.main`, what the ``harmonic-nas`` script
calls), grouped by kind. For each: exit code 2, exactly one line on stderr starting with
``error:`` (plain progress lines aside), no traceback anywhere, and every file under the test's
directory (the finished run, the inputs) unchanged before and after (an SQLite database by its
content, :mod:`tests.tree`), and nothing written beside that directory or in the cache.

A finished run (synthetic search problem, no training) is made once per session by the CLI
fixture and copied for the cases that need one. No case may reach a dataset build: the data
stage raises if it is reached (an accepted bad input then fails the case with a traceback).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from harmonic_nas.cli import main

from .conftest import SYNTHETIC, experiment, tree

#: Progress lines (printed when the output is not a terminal) are not error lines.
PROGRESS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")

LUT_KEY = "ConcatFC-input:1_8_4-N:1-C:8-L:4"
ENTRY = {
    "latency": {"mean": 0.1, "std": 0.0, "count": 1, "median": 0.1},
    "energy": {"mean": 1.0, "std": 0.0, "count": 1},
}


def _edited(doc: Any, edit: Callable[[Any], Any] | None) -> Any:
    """``edit`` changes ``doc`` in place; a new list or dict it returns replaces ``doc``."""
    out = edit(doc) if edit is not None else None
    return out if isinstance(out, list | dict) and out is not doc else doc


class Ctx:
    """What a case builds its inputs in: ``root`` (hashed before/after), a finished run on
    demand, and writers for configs, JSON, npz datasets, architectures and LUTs."""

    def __init__(self, root: Path, template: Path, exported: Path) -> None:
        self.root = root
        self._template = template
        self._exported = exported
        self._run: Path | None = None
        self._model: Path | None = None

    @property
    def model(self) -> Path:
        """A copy of an exported model's folder (``model.pt``, ``preprocess.json``, ...)."""
        if self._model is None:
            self._model = Path(shutil.copytree(self._exported, self.root / "model"))
        return self._model

    def inputs(self, n: int = 2, **arrays: Any) -> Path:
        """An ``.npz`` of ``n`` raw-scale samples for the exported model (``name=None`` drops
        an array; other keyword arguments replace or add arrays)."""
        rng = np.random.default_rng(1)
        data: dict[str, Any] = {
            "image": rng.uniform(0, 255, (n, 1, 28, 28)).astype(np.float32),
            "audio": rng.standard_normal((n, 1, 20, 20)).astype(np.float32),
        }
        for k, v in arrays.items():
            if v is None:
                data.pop(k, None)
            else:
                data[k] = v
        path = self.root / "in" / "inputs.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **data)
        return path

    # -- the finished run ------------------------------------------------------------------
    @property
    def run(self) -> Path:
        """A copy of the finished synthetic run (``root/exp/runs/syn``)."""
        if self._run is None:
            dst = self.root / "exp"
            shutil.copytree(self._template, dst)
            self._run = dst / "runs" / "syn"
            saved = self._run / "config.yaml"
            saved.write_text(
                saved.read_text(encoding="utf-8").replace(str(self._template), str(dst)),
                encoding="utf-8",
            )
        return self._run

    def run_file(self, name: str) -> Path:
        return self.run / name

    def edit_json(self, path: Path, edit: Callable[[Any], Any]) -> Path:
        obj = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps(_edited(obj, edit)), encoding="utf-8")
        return path

    def edit_yaml(self, path: Path, edit: Callable[[Any], Any]) -> Path:
        obj = yaml.safe_load(path.read_text(encoding="utf-8"))
        path.write_text(yaml.safe_dump(_edited(obj, edit), sort_keys=False))
        return path

    @property
    def member(self) -> str:
        """The id of the first Pareto member of the run."""
        pareto = json.loads((self.run / "pareto.json").read_text(encoding="utf-8"))
        return str(pareto["members"][0]["id"])

    # -- inputs ----------------------------------------------------------------------------
    def text(self, name: str, content: str | bytes) -> Path:
        path = self.root / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def config(self, file: str = "exp.yaml", /, **patch: Any) -> Path:
        """The base experiment with ``section__key=value`` patches (``None`` deletes a key)."""
        data: dict[str, Any] = json.loads(json.dumps(experiment(self.root / "runs", "bad")))
        for dotted, value in patch.items():
            *parents, leaf = dotted.split("__")
            node = data
            for p in parents:
                node = node.setdefault(p, {})
            if value is None:
                node.pop(leaf, None)
            else:
                node[leaf] = value
        return self.text(file, yaml.safe_dump(data, sort_keys=False))

    def arch(self, edit: Callable[[dict[str, Any]], Any] | None = None) -> Path:
        """A valid ARCH.json (a Pareto member's), edited."""
        models = self._template / "runs" / "syn" / "models"
        src = json.loads(next(models.glob("*/arch.json")).read_text(encoding="utf-8"))
        src["genotype"] = None  # the synthetic problem's stand-in genotype is no real one
        return self.text("arch.json", json.dumps(_edited(src, edit)))

    def lut(self, edit: Callable[[dict[str, Any]], Any] | None = None) -> Path:
        """A valid one-entry LUT file, edited."""
        doc: dict[str, Any] = {
            "schema_version": 1,
            "device": {"name": "dev", "backend": "torch", "threads": 1, "batch_size": 1},
            "units": {"latency": "ms", "energy": "mJ"},
            "energy_source": "model:constant 15 W",
            "created": "2024-01-01T00:00:00+00:00",
            "overhead": None,
            "meta": {},
            "entries": {LUT_KEY: json.loads(json.dumps(ENTRY))},
        }
        return self.text("lut.json", json.dumps(_edited(doc, edit)))

    def npz(self, **overrides: dict[str, Any]) -> Path:
        """train/val/test.npz of a valid 3-class dataset (``split={array: value}`` overrides,
        ``split={array: None}`` drops one)."""
        rng = np.random.default_rng(0)
        root = self.root / "in" / "ds"
        root.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", 12), ("val", 6), ("test", 6)):
            arrays: dict[str, Any] = {
                "image": rng.standard_normal((n, 1, 6, 6)).astype(np.float32),
                "audio": rng.standard_normal((n, 4, 5)).astype(np.float32),
                "labels": np.arange(n) % 3,
            }
            for k, v in overrides.get(split, {}).items():
                if v is None:
                    arrays.pop(k, None)
                else:
                    arrays[k] = v
            np.savez(root / f"{split}.npz", **arrays)
        return root


@dataclass(frozen=True)
class Case:
    """One bad input: ``argv(ctx)`` is the command line; ``expect`` a fragment of the error."""

    id: str
    argv: Callable[[Ctx], list[str]]
    expect: str
    env: dict[str, str] = field(default_factory=dict)


CASES: dict[str, list[Case]] = {}


def case(kind: str, id: str, expect: str, env: dict[str, str] | None = None) -> Callable[..., Any]:
    def add(argv: Callable[[Ctx], list[str]]) -> Callable[[Ctx], list[str]]:
        CASES.setdefault(kind, []).append(Case(id, argv, expect, env or {}))
        return argv

    return add


def cfg_case(id: str, expect: str, cmd: str = "search", **patch: Any) -> None:
    """A config-file case: the base experiment with ``patch``, given to ``cmd``."""
    case("config", id, expect)(lambda c: [cmd, str(c.config(**patch))])


def raw_case(id: str, content: str | bytes, expect: str, cmd: str = "search") -> None:
    case("config", id, expect)(lambda c: [cmd, str(c.text("exp.yaml", content))])


# --------------------------------------------------------------------------- config files

case("config", "missing-file", "config file not found")(
    lambda c: ["search", str(c.root / "nope.yaml")]
)
case("config", "directory", "config file not found")(lambda c: ["search", str(c.root)])
raw_case("not-utf8", b"name: \xff\xfe\n", "is not UTF-8 text")
raw_case("yaml-syntax", "name: [unclosed\n", "is not valid YAML at line")
raw_case("top-level-list", "- a\n- b\n", "the top level must be a mapping")
raw_case("empty-file", "", "the top level must be a mapping")
raw_case("scalar", "42\n", "the top level must be a mapping")
raw_case("tab-indent", "name: x\n\tseed: 1\n", "is not valid YAML")
cfg_case("unknown-top-key", "unknown key 'colour'", colour="red")
cfg_case("unknown-nested-key", "unknown key 'pretrain.epoch'", pretrain__epoch=3)
cfg_case("missing-name", "missing required key 'name'", name=None)
cfg_case("missing-modalities", "missing required key 'modalities'", modalities=None)
cfg_case(
    "one-modality",
    "at least two modalities",
    modalities={"image": {"preset": "avmnist", "shape": [1, 28, 28]}},
)
cfg_case("name-dotdot", "must name a directory inside run_dir", name="..")
cfg_case("name-dot", "must name a directory inside run_dir", name=".")
cfg_case("name-slash", "'name'", name="a/b")
cfg_case("name-int", "'name'", name=5)
cfg_case("seed-bool", "'seed': Input should be a valid integer", seed=True)
cfg_case("epochs-bool", "'pretrain.epochs': Input should be a valid integer", pretrain__epochs=True)
cfg_case(
    "epochs-string", "'pretrain.epochs': Input should be a valid integer", pretrain__epochs="5"
)
cfg_case("epochs-float", "'pretrain.epochs': Input should be a valid integer", pretrain__epochs=2.5)
cfg_case("epochs-zero", "'pretrain.epochs'", pretrain__epochs=0)
cfg_case("lr-inf", "'pretrain.lr': Input should be a finite number", pretrain__lr=float("inf"))
cfg_case("lr-nan", "'pretrain.lr': Input should be a finite number", pretrain__lr=float("nan"))
cfg_case("lr-negative", "'pretrain.lr'", pretrain__lr=-0.1)
cfg_case("lr-string", "'pretrain.lr': Input should be a valid number", pretrain__lr="fast")
cfg_case("power-inf", "'device.power_w'", device__power_w=float("inf"))
cfg_case("power-negative", "'device.power_w'", device__power_w=-5)
cfg_case("threads-zero", "'device.threads'", device__threads=0)
cfg_case("threads-bool", "'device.threads': Input should be a valid integer", device__threads=True)
cfg_case("backend-unknown", "'device.backend'", device__backend="tensorflow")
cfg_case("energy-source-unknown", "'device.energy_source'", device__energy_source="solar")
cfg_case("population-one", "population must be at least 2", search__population=1)
cfg_case("cells-out-of-range", "must be [low, high] with 1 <= low", search__cells=[0, 9])
cfg_case("nodes-reversed", "must be [low, high] with 1 <= low", search__nodes=[3, 2])
cfg_case("cells-strings", "'search.cells.0'", search__cells=["1", 2])
cfg_case("strategy-unknown", "'search.strategy'", search__strategy="genetic")
cfg_case("budget-inf", "'search.latency_budget_ms'", search__latency_budget_ms=float("inf"))
cfg_case("crossover-above-one", "'search.crossover_prob'", search__crossover_prob=1.5)
cfg_case("fusion-L-not-square", "L must be a perfect square", fusion__L=15)
cfg_case("fusion-ops-empty", "give at least one fusion operator", fusion__ops=[])
cfg_case("fusion-ops-twice", "list each fusion operator once", fusion__ops=["Sum", "Sum"])
cfg_case(
    "fusion-lr-min-above-lr",
    "weight_lr_min must not exceed weight_lr",
    fusion__weight_lr=1e-4,
    fusion__weight_lr_min=1e-3,
)
cfg_case("fusion-dropout-one", "'fusion.dropout'", fusion__dropout=1.0)
cfg_case(
    "shape-zero",
    "every dimension must be a positive integer",
    modalities={
        "image": {"preset": "avmnist", "shape": [0, 28, 28]},
        "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
    },
)
cfg_case(
    "shape-string",
    "'modalities.image.shape.0'",
    modalities={
        "image": {"preset": "avmnist", "shape": ["1", 28, 28]},
        "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
    },
)
cfg_case(
    "kind-unknown",
    "'modalities.image.kind'",
    modalities={
        "image": {"preset": "avmnist", "shape": [1, 28, 28], "kind": "smell"},
        "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
    },
)
cfg_case("pretrain-config", "'pretrain.epochs'", cmd="pretrain", pretrain__epochs=True)
cfg_case("run-config", "'fusion.ops'", cmd="run", fusion__ops=[])
cfg_case("profile-config", "'device.power_w'", cmd="profile", device__power_w=float("inf"))
case("config", "override-not-pair", "is not of the form key=value")(
    lambda c: ["search", str(c.config()), "-o", "search.population"]
)
case("config", "override-unknown-key", "unknown key 'search.populaton'")(
    lambda c: ["search", str(c.config()), "-o", "search.populaton=8"]
)
case("config", "override-bool", "(from -o pretrain.epochs=true)")(
    lambda c: ["search", str(c.config()), "-o", "pretrain.epochs=true"]
)
case("config", "override-through-scalar", "cannot apply -o fusion.C.x=1")(
    lambda c: ["search", str(c.config()), "-o", "fusion.C=4", "-o", "fusion.C.x=1"]
)
case("config", "override-inf", "'device.power_w'")(
    lambda c: ["search", str(c.config()), "-o", "device.power_w=.inf"]
)

# --------------------------------------------------------------------------- run-dir files


def _status(c: Ctx) -> list[str]:
    return ["status", str(c.run)]


def run_case(id: str, cmd: str, expect: str, spoil: Callable[[Ctx], Any]) -> None:
    """A run-directory case: ``spoil`` damages the finished run, then ``cmd RUN`` runs."""

    def argv(c: Ctx) -> list[str]:
        extra = ["-m", c.member] if cmd == "export" else []
        spoil(c)
        return [cmd, str(c.run), *extra]

    case("run-dir", id, expect)(argv)


def _versioned(version: Any) -> Callable[[Any], None]:
    def edit(obj: Any) -> None:
        obj["schema_version"] = version

    return edit


for _cmd in ("status", "report"):
    run_case(
        f"{_cmd}-config-missing",
        _cmd,
        "is not a run directory (no config.yaml)",
        lambda c: (c.run / "config.yaml").unlink(),
    )
    run_case(
        f"{_cmd}-config-not-utf8",
        _cmd,
        "is not UTF-8 text",
        lambda c: (c.run / "config.yaml").write_bytes(b"name: \xff\n"),
    )
    run_case(
        f"{_cmd}-config-yaml-error",
        _cmd,
        "is not valid YAML",
        lambda c: (c.run / "config.yaml").write_text("name: [\n"),
    )
    run_case(
        f"{_cmd}-config-version-2",
        _cmd,
        "has schema_version 2, expected 1",
        lambda c: c.edit_yaml(c.run / "config.yaml", _versioned(2)),
    )
    run_case(
        f"{_cmd}-config-version-missing",
        _cmd,
        "has schema_version None, expected 1",
        lambda c: c.edit_yaml(c.run / "config.yaml", lambda d: d.pop("schema_version")),
    )
    run_case(
        f"{_cmd}-config-epochs-bool",
        _cmd,
        "'pretrain.epochs': Input should be a valid integer",
        lambda c: c.edit_yaml(c.run / "config.yaml", lambda d: d["pretrain"].update(epochs=True)),
    )
run_case(
    "status-config-list",
    "status",
    "the top level must be a mapping",
    lambda c: (c.run / "config.yaml").write_text("- 1\n"),
)
run_case(
    "status-search-index-corrupt",
    "status",
    "is not valid JSON",
    lambda c: (c.run / "search.json").write_text("{"),
)
run_case(
    "status-search-index-version",
    "status",
    "has schema_version 7, expected 1",
    lambda c: c.edit_json(c.run / "search.json", _versioned(7)),
)
run_case(
    "status-study-db-garbage",
    "status",
    "cannot open study storage",
    lambda c: (c.run / "study.db").write_bytes(b"not a database" * 100),
)
run_case(
    "status-study-db-missing",
    "status",
    "no study database at",
    lambda c: (c.run / "study.db").unlink(),
)
run_case(
    "report-pareto-missing",
    "report",
    "has no finished search",
    lambda c: (c.run / "pareto.json").unlink(),
)
run_case(
    "report-pareto-corrupt",
    "report",
    "is not valid JSON",
    lambda c: (c.run / "pareto.json").write_text("[1, 2"),
)
run_case(
    "report-candidates-corrupt",
    "report",
    "is not valid JSON",
    lambda c: (c.run / "candidates.json").write_text("nope"),
)
run_case(
    "report-hypervolume-corrupt",
    "report",
    "is not valid JSON",
    lambda c: (c.run / "hypervolume.json").write_text("{"),
)
for _file in ("pareto.json", "candidates.json", "hypervolume.json"):
    for _version in (3, True):
        run_case(
            f"report-{_file.split('.')[0]}-version-{_version}",
            "report",
            f"/{_file} has schema_version {_version!r}, expected 1",
            lambda c, f=_file, v=_version: c.edit_json(c.run / f, _versioned(v)),
        )
run_case(
    "export-pareto-corrupt",
    "export",
    "is not valid JSON",
    lambda c: (c.run / "pareto.json").write_text("{"),
)
run_case(
    "export-pareto-version",
    "export",
    "has schema_version 3, expected 1",
    lambda c: c.edit_json(c.run / "pareto.json", _versioned(3)),
)
case("run-dir", "export-unknown-model", "t9999")(lambda c: ["export", str(c.run), "-m", "t9999"])
case("run-dir", "run-dir-is-a-file", "")(lambda c: ["status", str(c.text("not-a-run", "x"))])
case("run-dir", "run-dir-missing", "is not a run directory (no config.yaml)")(
    lambda c: ["status", str(c.root / "no-such-run")]
)
case("run-dir", "status-storage-unsupported", "unsupported storage URL")(
    lambda c: ["status", str(c.run), "--storage", "mongodb://x/y"]
)
case("run-dir", "status-storage-in-memory", "no study database at :memory:")(
    lambda c: ["status", str(c.run), "--storage", "sqlite:///:memory:"]
)
case("run-dir", "run-made-with-another-config", "another config")(
    lambda c: [
        "run",
        str(
            c.edit_yaml(
                Path(shutil.copy(c.run / "config.yaml", c.root / "in.yaml")),
                lambda d: (d.pop("schema_version"), d["fusion"].update(C=96)),
            )
        ),
    ]
)

# --------------------------------------------------------------------------- datasets


def data_case(id: str, expect: str, **overrides: dict[str, Any]) -> None:
    case("dataset", id, expect)(
        lambda c: ["data", "info", "npz", "--path", str(c.npz(**overrides))]
    )


def _labels(n: int, bad: Any, dtype: Any = None) -> np.ndarray:
    y = (np.arange(n) % 3).astype(dtype or np.int64)
    y[0] = bad
    return y


data_case("label-1e9", "imply 1000000001 classes", train={"labels": _labels(12, 10**9)})
data_case("label-1e9-test", "imply 1000000001 classes", test={"labels": _labels(6, 10**9)})
data_case("label-negative", "range over [-1, 2]", val={"labels": _labels(6, -1)})
data_case("label-fraction", "are not integers", train={"labels": _labels(12, 0.5, np.float64)})
data_case("label-nan", "are not integers", train={"labels": _labels(12, np.nan, np.float64)})
data_case("label-1e30", "range over [0, 1e+30]", train={"labels": _labels(12, 1e30, np.float64)})
data_case("label-strings", "dtype <U", train={"labels": np.array(["a"] * 12)})
data_case("label-complex", "complex dtype", train={"labels": np.ones(12, dtype=np.complex64)})
data_case("labels-missing", "has no 'labels' array", val={"labels": None})
data_case("labels-3d", "labels of split", train={"labels": np.zeros((12, 2, 2))})
data_case(
    "image-complex",
    "complex dtype complex64",
    train={"image": np.ones((12, 1, 6, 6), np.complex64)},
)
data_case("image-nan", "NaN/Inf", val={"image": np.full((6, 1, 6, 6), np.nan, np.float32)})
data_case("image-inf", "NaN/Inf", test={"image": np.full((6, 1, 6, 6), np.inf, np.float32)})
data_case("image-strings", "non-numeric dtype", train={"image": np.array([["x"] * 5] * 12)})
data_case("image-structured", "structured/void dtype", train={"image": np.zeros((12, 3), "f4,i4")})
data_case("image-datetime", "datetime dtype", train={"image": np.zeros((12, 3), "datetime64[s]")})
data_case("image-1d", "store (N, features)", train={"image": np.zeros(12, np.float32)})
data_case(
    "image-too-few-rows",
    "has 5 samples but there are 12 labels",
    train={"image": np.zeros((5, 1, 6, 6))},
)
data_case(
    "image-other-shape",
    "has sample shape [1, 7, 7] in val.npz",
    val={"image": np.zeros((6, 1, 7, 7))},
)
data_case("one-modality", "needs at least two", train={"audio": None})
data_case("modality-missing-in-val", "differs in 'audio'", val={"audio": None})
data_case("extra-modality-in-test", "differs in 'extra'", test={"extra": np.zeros((6, 3))})
data_case(
    "class-names-count",
    "has 2 class_names for 3 classes",
    train={"class_names": np.array(["a", "b"])},
)
data_case(
    "class-names-2d",
    "class_names of train.npz has shape [1, 3]",
    train={"class_names": np.array([["a", "b", "c"]])},
)
data_case(
    "split-empty",
    "split 'test' is empty",
    test={
        k: np.zeros((0, *s)) for k, s in (("image", (1, 6, 6)), ("audio", (4, 5)), ("labels", ()))
    },
)
data_case(
    "class-absent-from-val",
    "class 2 ('2') is missing from split 'val'",
    val={"labels": np.arange(6) % 2},
)
data_case(
    "object-array",
    "object (pickled) array",
    train={"image": np.array([{"a": 1}] * 12, dtype=object)},
)


def _npy_in_place_of(path: Path) -> Path:
    """Overwrite an ``.npz`` split with a lone ``.npy`` array (keeping the name); its folder."""
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    return path.parent


def ds_case(id: str, expect: str, build: Callable[[Ctx], list[str]]) -> None:
    case("dataset", id, expect)(build)


ds_case(
    "path-missing",
    "does not exist",
    lambda c: ["data", "info", "npz", "--path", str(c.root / "none")],
)
ds_case(
    "path-is-file",
    "must be a directory",
    lambda c: ["data", "info", "npz", "--path", str(c.text("f", "x"))],
)
ds_case(
    "train-missing",
    "expected train.npz",
    lambda c: [
        "data",
        "info",
        "npz",
        "--path",
        str((c.npz(), (c.root / "in/ds/train.npz").unlink())[0]),
    ],
)
ds_case(
    "npz-garbage",
    "cannot read",
    lambda c: [
        "data",
        "info",
        "npz",
        "--path",
        str((c.npz(), (c.root / "in/ds/val.npz").write_bytes(b"PK\x03\x04junk"))[0]),
    ],
)
ds_case(
    "npy-not-npz",
    ".npy array, not an .npz archive",
    lambda c: [
        "data",
        "info",
        "npz",
        "--path",
        str(_npy_in_place_of(c.npz() / "test.npz")),
    ],
)
ds_case(
    "pickle-file",
    "cannot read",
    lambda c: [
        "data",
        "info",
        "npz",
        "--path",
        str((d := c.npz(), (d / "train.npz").write_bytes(b"\x80\x04\x95junk."))[0]),
    ],
)
ds_case(
    "num-classes-huge",
    "the option num_classes imply 1000000000 classes",
    lambda c: ["data", "info", "npz", "--path", str(c.npz()), "--option", "num_classes=1000000000"],
)
ds_case(
    "num-classes-bool",
    "option 'num_classes' must be int",
    lambda c: ["data", "info", "npz", "--path", str(c.npz()), "--option", "num_classes=true"],
)
ds_case(
    "num-classes-one",
    "out of range",
    lambda c: ["data", "info", "npz", "--path", str(c.npz()), "--option", "num_classes=1"],
)
ds_case(
    "kinds-bad",
    "write name:kind",
    lambda c: ["data", "info", "npz", "--path", str(c.npz()), "--option", "kinds=image:smell"],
)
ds_case(
    "kinds-unknown-modality",
    "not a modality",
    lambda c: ["data", "info", "npz", "--path", str(c.npz()), "--option", "kinds=nose:audio"],
)
ds_case(
    "unknown-option",
    "unknown option 'val_size'",
    lambda c: ["data", "info", "npz", "--path", str(c.npz()), "--option", "val_size=3"],
)
ds_case(
    "option-not-pair",
    "",
    lambda c: ["data", "info", "npz", "--path", str(c.npz()), "--option", "num_classes"],
)
ds_case("unknown-dataset", "unknown dataset", lambda c: ["data", "info", "imagenet"])
ds_case(
    "float-option-inf",
    "option 'snr_db_min' must be float",
    lambda c: ["data", "build", "av-digits", "--option", "snr_db_min=.inf"],
)
ds_case(
    "avmnist-missing-files",
    "wrong layout for dataset 'avmnist'",
    lambda c: ["data", "info", "avmnist", "--path", str(c.root)],
)
ds_case(
    "avmnist-complex",
    "complex dtype complex64",
    lambda c: [
        "data",
        "info",
        "avmnist",
        "--path",
        str(
            (
                c.root / "in" / "av",
                [
                    (c.root / "in" / "av" / sub).mkdir(parents=True, exist_ok=True)
                    for sub in ("image", "audio")
                ],
                np.save(
                    c.root / "in" / "av" / "image" / "train_data.npy",
                    np.ones((4, 784), np.complex64),
                ),
            )[0]
        ),
    ],
)

# --------------------------------------------------------------------------- ARCH.json / genomes


def arch_case(id: str, expect: str, edit: Callable[[dict[str, Any]], Any]) -> None:
    case("arch", id, expect)(lambda c: ["cost", str(c.config()), "--arch", str(c.arch(edit))])


def _gene(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(a: dict[str, Any]) -> None:
        a["modalities"]["image"]["genome"][key][0] = value

    return edit


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(a: dict[str, Any]) -> None:
        a[key] = value

    return edit


arch_case("gene-string", "genome genes must be lists of integers; 'ks'", _gene("ks", "5"))
arch_case("gene-float", "genome genes must be lists of integers; 'e'", _gene("e", 4.0))
arch_case("gene-bool", "genome genes must be lists of integers; 'd'", _gene("d", True))
arch_case("gene-null", "genome genes must be lists of integers", _gene("ks", None))
arch_case(
    "genes-not-list",
    "genome genes must be lists of integers",
    lambda a: a["modalities"]["image"]["genome"].update(ks="357"),
)
arch_case(
    "genome-unknown-key",
    "a backbone genome must be an object",
    lambda a: a["modalities"]["image"]["genome"].update(depth=[2]),
)
arch_case("cells-string", "architecture key 'cells' must be an integer", _set("cells", "2"))
arch_case("cells-bool", "architecture key 'cells' must be an integer", _set("cells", True))
arch_case("cells-zero", "fusion cells must be in 1..", _set("cells", 0))
arch_case("nodes-huge", "fusion nodes must be in 1..", _set("nodes", 10**9))
arch_case("L-not-square", "fusion L must be a perfect square", _set("L", 5))
arch_case("schema-version-2", "schema_version 2, expected 1", _set("schema_version", 2))
arch_case("schema-version-bool", "schema_version True, expected 1", _set("schema_version", True))
arch_case("unknown-key", "unknown key(s) ['colour']", _set("colour", "red"))
arch_case("modalities-empty", "needs a non-empty 'modalities'", _set("modalities", {}))
arch_case(
    "shape-strings",
    "shape must be a list of integers",
    lambda a: a["modalities"]["image"].update(shape=["1", 28, 28]),
)
arch_case("top-level-list", "has schema_version None, expected 1", lambda a: [a])
case("arch", "not-json", "is not valid JSON")(
    lambda c: ["cost", str(c.config()), "--arch", str(c.text("arch.json", "{nope"))]
)
case("arch", "not-utf8", "is not valid JSON")(
    lambda c: ["cost", str(c.config()), "--arch", str(c.text("arch.json", b"\xff\xfe{}"))]
)
case("arch", "missing", "not found")(
    lambda c: ["cost", str(c.config()), "--arch", str(c.root / "none.json")]
)

# --------------------------------------------------------------------------- LUT / device tables


def lut_case(id: str, expect: str, edit: Callable[[dict[str, Any]], Any]) -> None:
    case("lut", id, expect)(lambda c: ["lut", "show", str(c.lut(edit))])


def _entry(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        section, stat = path.split(".")
        d["entries"][LUT_KEY][section][stat] = value

    return edit


lut_case(
    "schema-version-3", "has schema_version 3, expected one of 1, 2", _set("schema_version", 3)
)
lut_case(
    "schema-version-missing",
    "has schema_version None, expected one of 1, 2",
    lambda d: d.pop("schema_version"),
)
lut_case("device-missing", "'device' must be an object", lambda d: d.update(device=None))
lut_case("batch-size-8", "batch_size must be 1", lambda d: d["device"].update(batch_size=8))
lut_case("backend-unknown", "unknown backend", lambda d: d["device"].update(backend="tpu"))
lut_case(
    "threads-bool",
    "'threads' must be a non-negative integer",
    lambda d: d["device"].update(threads=True),
)
lut_case("units-seconds", "units must be", _set("units", {"latency": "s", "energy": "J"}))
lut_case("energy-source-unknown", "energy_source", _set("energy_source", "solar"))
lut_case("entries-list", "'entries' must be an object", _set("entries", []))
lut_case("entry-latency-negative", LUT_KEY, _entry("latency.mean", -1.0))
lut_case("entry-latency-string", LUT_KEY, _entry("latency.mean", "fast"))
lut_case("entry-key-malformed", "", lambda d: d["entries"].update({"not a key": ENTRY}))
lut_case("meta-list", "'meta' must be an object", _set("meta", []))
lut_case("top-level-list", "must be a JSON object", lambda d: [d])
case("lut", "not-json", "is not valid JSON")(
    lambda c: ["lut", "show", str(c.text("lut.json", "{"))]
)
case("lut", "nan-token", "")(
    lambda c: [
        "lut",
        "show",
        str(c.text("lut.json", json.dumps(json.loads(c.lut().read_text())).replace("0.1", "NaN"))),
    ]
)
case("lut", "unknown-device", "")(lambda c: ["lut", "show", "no-such-device"])
case("lut", "import-missing-file", "")(
    lambda c: ["lut", "import", str(c.root / "none.json"), "--device", "x"]
)
case("lut", "import-not-json", "")(
    lambda c: ["lut", "import", str(c.text("t.json", "{")), "--device", "x"]
)

# --------------------------------------------------------------------------- predict inputs

case("predict", "model-missing", "")(lambda c: ["predict", str(c.root / "model.pt")])
case("predict", "model-garbage-pt", "")(
    lambda c: ["predict", str(c.text("model.pt", b"garbage")), "-i", str(c.root / "x.npz")]
)
case("predict", "model-garbage-onnx", "")(
    lambda c: ["predict", str(c.text("model.onnx", b"garbage")), "-i", str(c.root / "x.npz")]
)
case("predict", "model-dir-empty", "")(
    lambda c: [
        "predict",
        str((c.root / "in" / "empty").mkdir(parents=True) or c.root / "in" / "empty"),
    ]
)
case("predict", "file-pair-malformed", "")(
    lambda c: ["predict", str(c.text("model.pt", b"garbage")), "--file", "image"]
)


def predict_case(id: str, expect: str, **arrays: Any) -> None:
    """``predict MODEL -i inputs.npz`` with the arrays of a valid input file replaced."""
    case("predict", id, expect)(lambda c: ["predict", str(c.model), "-i", str(c.inputs(**arrays))])


def file_case(id: str, expect: str, files: Callable[[Ctx], list[str]]) -> None:
    """``predict MODEL --file ...`` with the given pairs."""
    case("predict", id, expect)(
        lambda c: ["predict", str(c.model), *[x for f in files(c) for x in ("--file", f)]]
    )


predict_case("input-complex", "complex dtype", image=np.ones((2, 1, 28, 28), np.complex64))
predict_case(
    "input-object", "object (pickled) array", image=np.array([{"a": 1}, None], dtype=object)
)
predict_case("input-structured", "structured/void dtype", image=np.zeros((2, 3), "f4,i4"))
predict_case("input-strings", "image", image=np.array([["x"] * 3] * 2))
predict_case("input-modality-missing", "audio", audio=None)
predict_case("input-unknown-modality", "nose", nose=np.zeros((2, 3)))
predict_case("input-wrong-shape", "image", image=np.zeros((2, 1, 27, 27), np.float32))
predict_case("input-wrong-rank", "image", image=np.zeros((2, 28), np.float32))
predict_case("input-nan", "NaN or infinite", image=np.full((2, 1, 28, 28), np.nan, np.float32))
predict_case("input-inf", "NaN or infinite", audio=np.full((2, 1, 20, 20), np.inf, np.float32))
predict_case("input-count-mismatch", "different numbers of samples", audio=np.zeros((3, 1, 20, 20)))
case("predict", "input-missing", "input file not found")(
    lambda c: ["predict", str(c.model), "-i", str(c.root / "none.npz")]
)
case("predict", "input-npy", ".npy array, not an .npz archive")(
    lambda c: ["predict", str(c.model), "-i", str(_npy_in_place_of(c.inputs())) + "/inputs.npz"]
)
case("predict", "input-garbage", "cannot read")(
    lambda c: ["predict", str(c.model), "-i", str(c.text("x.npz", b"PK\x03\x04garbage"))]
)
case("predict", "input-text-file", "cannot read")(
    lambda c: ["predict", str(c.model), "-i", str(c.text("x.npz", "image,audio\n1,2\n"))]
)
file_case("file-unknown-modality", "unknown modality 'nose'", lambda c: ["nose=x.png"])
file_case(
    "file-missing", "", lambda c: [f"image={c.root / 'none.png'}", f"audio={c.root / 'none.wav'}"]
)
file_case("file-twice", "gives modality 'image' twice", lambda c: ["image=a.png", "image=b.png"])
file_case("file-not-pair", "is not MODALITY=FILE", lambda c: ["image"])
file_case(
    "file-garbage-image",
    "",
    lambda c: [f"image={c.text('x.png', b'not a png')}", f"audio={c.text('x.wav', b'not a wav')}"],
)
case("predict", "preprocess-corrupt", "")(
    lambda c: [
        "predict",
        str((c.model / "preprocess.json").write_text("{") and c.model),
        "-i",
        str(c.inputs()),
    ]
)
case("predict", "preprocess-not-utf8", "")(
    lambda c: [
        "predict",
        str((c.model / "preprocess.json").write_bytes(b"\xff\xfe") and c.model),
        "-i",
        str(c.inputs()),
    ]
)
for _version in (99, True, None):
    case(
        "predict",
        f"preprocess-version-{_version}",
        f"preprocess.json has schema_version {_version!r}, expected 1 or 2",
    )(
        lambda c, v=_version: [
            "predict",
            str(c.edit_json(c.model / "preprocess.json", _versioned(v)).parent),
            "-i",
            str(c.inputs()),
        ]
    )
case("predict", "model-file-garbage", "")(
    lambda c: [
        "predict",
        str((c.model / "model.pt").write_bytes(b"junk") and c.model / "model.pt"),
        "-i",
        str(c.inputs()),
    ]
)

# --------------------------------------------------------------------------- environment

for _value in ("abc", "0", "-1", "1.5", "2000", "２"):
    case("env", f"threads-{_value}", "HARMONIC_NAS_THREADS", {"HARMONIC_NAS_THREADS": _value})(
        lambda c: ["data", "list"]
    )
for _value in ("LOUD", "1", "warn ing"):
    case("env", f"log-{_value}", "HARMONIC_NAS_LOG", {"HARMONIC_NAS_LOG": _value})(
        lambda c: ["data", "list"]
    )

# --------------------------------------------------------------------------- CLI options

case("options", "missing-argument", "missing argument")(lambda c: ["search"])
case("options", "unknown-option", "no such option: --population")(
    lambda c: ["search", str(c.config()), "--population", "3"]
)
case("options", "unknown-command", "no such command 'serach'")(lambda c: ["serach"])
case("options", "export-repeats-below-50", "'--repeats'")(
    lambda c: ["export", str(c.run), "-m", "t0000", "--repeats", "3"]
)
case("options", "export-samples-zero", "'--samples'")(
    lambda c: ["export", str(c.run), "-m", "t0000", "--samples", "0"]
)
case("options", "export-model-missing", "missing option '--model'")(
    lambda c: ["export", str(c.run)]
)
case("options", "export-tolerance-nan", "'--tolerance'")(
    lambda c: ["export", str(c.run), "-m", "t0000", "--tolerance", "abc"]
)
case("options", "predict-top-zero", "'--top'")(lambda c: ["predict", str(c.root), "--top", "0"])
case("options", "data-seed-not-int", "'--seed'")(
    lambda c: ["data", "build", "av-digits", "--seed", "x"]
)
case("options", "option-needs-value", "requires an argument")(
    lambda c: ["data", "info", "npz", "--option"]
)
case("options", "verbose-value", "no such option")(lambda c: ["--verbosity", "search"])
case("options", "override-without-value", "requires an argument")(
    lambda c: ["search", str(c.config()), "-o"]
)
case("options", "status-extra-argument", "unexpected extra argument")(
    lambda c: ["status", str(c.run), "extra"]
)


# --------------------------------------------------------------------------- names (issue 25, 1)
# Every name that becomes a path part (run, modality, device and study names) is checked where it
# enters: nothing may be written outside the run directory, or in a folder a name made up.

_MOD = {"preset": "avmnist", "shape": [1, 28, 28]}
_AUD = {"preset": "avmnist", "shape": [1, 20, 20]}


def name_cfg_case(id: str, expect: str, cmd: str = "search", **patch: Any) -> None:
    case("names", id, expect)(lambda c: [cmd, str(c.config(**patch))])


for _bad, _why in (
    ("../../../outside/evil", "not-a-plain-name"),
    ("a/b", "slash"),
    (".hidden", "leading-dot"),
    ("-x", "leading-dash"),
    ("bild_\u00fc", "non-ascii"),
    ("x" * 300, "too-long"),
    ("", "empty"),
    ("a b", "space"),
):
    name_cfg_case(
        f"modality-{_why}",
        "modality name",
        modalities={_bad: _MOD, "audio": _AUD},
    )
for _cmd in ("search", "run", "pretrain"):
    name_cfg_case(
        f"modality-escapes-{_cmd}", "modality name", _cmd, modalities={"../x": _MOD, "audio": _AUD}
    )
name_cfg_case("device-escapes", "'device.name'", device__name="../../evil")
name_cfg_case("device-slash", "'device.name'", device__name="a/b")
name_cfg_case("device-dotdot", "'device.name'", device__name="..")
name_cfg_case("study-name-escapes", "'search.study_name'", search__study_name="../../evil")
name_cfg_case("study-name-slash", "'search.study_name'", search__study_name="s/t")
name_cfg_case("run-name-too-long", "is 300 characters long", name="r" * 300)
name_cfg_case("run-name-leading-dash", "must name a directory inside run_dir", name="-r")
name_cfg_case("run-name-non-ascii", "must name a directory inside run_dir", name="l\u00e4uft")
case("names", "study-name-option-escapes", "study name '../../evil'")(
    lambda c: ["search", str(c.config()), "--study-name", "../../evil"]
)
case("names", "study-name-option-absolute", "study name '/tmp/evil'")(
    lambda c: ["search", str(c.config()), "--study-name", "/tmp/evil"]
)
for _dev in ("../../evil", "a/b", "..", ".x", "x" * 200):
    case("names", f"lut-import-device-{_dev[:8]}", "device name")(
        lambda c, d=_dev: [
            "lut",
            "import",
            str(c.text("t.json", json.dumps({LUT_KEY: {"lat": 0.1, "enrg": 1.0}}))),
            "--device",
            d,
        ]
    )
case("names", "lut-show-device-escapes", "device name '../../evil'")(
    lambda c: ["lut", "show", "../../evil"]
)
case("names", "cost-device-escapes", "device name '../evil'")(
    lambda c: ["cost", str(c.config()), "--arch", str(c.arch()), "--device", "../evil"]
)
for _member in ("../../x", "..", "."):
    case("names", f"export-model-{_member}", "")(
        lambda c, m=_member: ["export", str(c.run), "-m", m]
    )
case("names", "profile-device-escapes", "device name '../evil'")(
    lambda c: ["profile", str(c.config()), "--device", "../evil"]
)


def npz_name_case(id: str, bad: str) -> None:
    """An ``.npz`` dataset whose modality array has a name that cannot be a file name."""
    arrays = {
        split: {"image": None, bad: np.zeros((n, 1, 6, 6), np.float32)}
        for split, n in (("train", 12), ("val", 6), ("test", 6))
    }
    case("names", id, "is not an ASCII identifier")(
        lambda c: ["data", "info", "npz", "--path", str(c.npz(**arrays))]
    )


npz_name_case("npz-array-escapes", "../../../outside/evil")
npz_name_case("npz-array-slash", "a/b")
npz_name_case("npz-array-leading-dot", ".hidden")
npz_name_case("npz-array-non-ascii", "bild_\u00fc")
npz_name_case("npz-array-space", "my image")

# --------------------------------------------------------------------------- read-only (issue 25, 2)
# ``status`` reads: it never creates, migrates or writes a storage, its own or a foreign one.


def _foreign_sqlite(path: Path, *, tables: bool = True) -> Path:
    """A SQLite database of another program (one table, one row), or with no table at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    try:
        if tables:
            con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
            con.execute("INSERT INTO notes (text) VALUES ('keep me')")
        else:
            con.execute("PRAGMA user_version = 7")
        con.commit()
    finally:
        con.close()
    return path


def _index_to(c: Ctx, url: str) -> None:
    """Point the run's ``search.json`` at another storage."""

    def edit(d: dict[str, Any]) -> None:
        for study in d["studies"].values():
            study["storage"] = url

    c.edit_json(c.run / "search.json", edit)


def _sql(c: Ctx, *statements: str) -> None:
    con = sqlite3.connect(c.run / "study.db")
    try:
        for st in statements:
            con.execute(st)
        con.commit()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


case("read-only", "index-names-foreign-db", "is not a study database")(
    lambda c: (
        _index_to(c, f"sqlite:///{_foreign_sqlite(c.root / 'other' / 'notes.db')}"),
        ["status", str(c.run)],
    )[1]
)
case("read-only", "index-names-tableless-db", "is not a study database")(
    lambda c: (
        _index_to(c, f"sqlite:///{_foreign_sqlite(c.root / 'other' / 'e.db', tables=False)}"),
        ["status", str(c.run)],
    )[1]
)
case("read-only", "index-names-missing-db", "no study database at")(
    lambda c: (_index_to(c, f"sqlite:///{c.root / 'none' / 'x.db'}"), ["status", str(c.run)])[1]
)
case("read-only", "storage-option-foreign-db", "is not a study database")(
    lambda c: [
        "status",
        str(c.run),
        "--storage",
        f"sqlite:///{_foreign_sqlite(c.root / 'other' / 'notes.db')}",
    ]
)
case("read-only", "storage-option-empty-file", "is not a study database")(
    lambda c: ["status", str(c.run), "--storage", f"sqlite:///{c.text('empty.db', b'')}"]
)
case("read-only", "study-db-empty-file", "is not a study database")(
    lambda c: ((c.run / "study.db").write_bytes(b""), ["status", str(c.run)])[1]
)
case("read-only", "study-db-tableless", "is not a study database")(
    lambda c: (
        (c.run / "study.db").unlink(),
        _foreign_sqlite(c.run / "study.db", tables=False),
        ["status", str(c.run)],
    )[2]
)
case("read-only", "study-db-version-rows-gone", "version_info (empty)")(
    lambda c: (_sql(c, "DELETE FROM version_info"), ["status", str(c.run)])[1]
)
case("read-only", "study-db-alembic-rows-gone", "alembic_version (empty)")(
    lambda c: (_sql(c, "DELETE FROM alembic_version"), ["status", str(c.run)])[1]
)
case("read-only", "study-db-trials-table-dropped", "trials")(
    lambda c: (
        _sql(c, "PRAGMA foreign_keys=OFF", "DROP TABLE trials"),
        ["status", str(c.run)],
    )[1]
)
case("read-only", "study-missing-from-db", "not found in")(
    lambda c: (
        c.edit_json(
            c.run / "search.json",
            lambda d: d.update(studies={"nope": next(iter(d["studies"].values()))}),
        ),
        ["status", str(c.run)],
    )[1]
)
case("read-only", "storage-option-directory", "no study database at")(
    lambda c: ["status", str(c.run), "--storage", f"sqlite:///{c.run}"]
)

# --------------------------------------------------------------------------- refused (issue 25, 5)
# A refused command changes nothing: the study's budget, its trials, config.yaml and the index
# are decided on first and written after.

_SYN = {"HARMONIC_NAS_SEARCH_PROBLEM": SYNTHETIC}


def _run_config(c: Ctx, edit: Callable[[dict[str, Any]], Any]) -> Path:
    """The finished run's own config (as a user's experiment file), edited."""
    path = Path(shutil.copy(c.run / "config.yaml", c.root / "in.yaml"))
    return c.edit_yaml(path, lambda d: (d.pop("schema_version"), edit(d)))


def refused_case(
    id: str,
    expect: str,
    edit: Callable[[dict[str, Any]], Any],
    *extra: str,
    cmd: str = "search",
    env: dict[str, str] | None = None,
) -> None:
    case("refused", id, expect, _SYN if env is None else env)(
        lambda c: [cmd, str(_run_config(c, edit)), *extra]
    )


def _search(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["search"].update(values)


for _cmd in ("search", "run"):
    refused_case(
        f"{_cmd}-generations-beyond-the-space",
        "distinct candidates",
        _search(generations=10**30),
        cmd=_cmd,
    )
    refused_case(
        f"{_cmd}-population-beyond-the-space",
        "distinct candidates",
        _search(population=10**12),
        cmd=_cmd,
    )
refused_case(
    "extension-with-another-problem",
    "was made with search problem",
    _search(population=6),
    env={},
)
refused_case(
    "extension-with-a-missing-problem",
    "",
    _search(population=6),
    env={"HARMONIC_NAS_SEARCH_PROBLEM": "no_such_module:factory"},
)
refused_case(
    "extension-with-an-unknown-strategy",
    "unknown",
    _search(population=6),
    "--strategy",
    "anneal",
)
refused_case(
    "extension-with-a-bad-study-name",
    "study name",
    _search(population=6),
    "--study-name",
    "../x",
)
refused_case(
    "extension-and-another-config",
    "another config",
    lambda d: (d["search"].update(population=6), d["fusion"].update(C=16)),
)
case("refused", "extension-into-a-foreign-db", "is not a study database", _SYN)(
    lambda c: [
        "search",
        str(
            _run_config(
                c,
                _search(
                    population=6,
                    storage=f"sqlite:///{_foreign_sqlite(c.root / 'other' / 'notes.db')}",
                ),
            )
        ),
    ]
)
case("refused", "extension-storage-option-foreign-db", "is not a study database", _SYN)(
    lambda c: [
        "search",
        str(_run_config(c, _search(population=6))),
        "--storage",
        f"sqlite:///{_foreign_sqlite(c.root / 'other' / 'notes.db')}",
    ]
)
case("refused", "extension-against-a-corrupt-lut", "is not valid JSON", _SYN)(
    lambda c: (
        (c.run / "luts").mkdir(exist_ok=True),
        (c.run / "luts" / "host.json").write_text("{"),
        ["run", str(_run_config(c, _search(generations=3)))],
    )[2]
)
case("refused", "extension-against-a-lut-of-another-schema", "schema_version", _SYN)(
    lambda c: (
        (c.run / "luts").mkdir(exist_ok=True),
        (c.run / "luts" / "host.json").write_text(json.dumps({"schema_version": 9})),
        ["run", str(_run_config(c, _search(generations=3)))],
    )[2]
)

# --------------------------------------------------------------------------- duplicate keys (25, 6)
# A key given twice is refused with both lines, wherever a user's YAML or JSON mapping is read.

_BASE = (
    "name: bad\n"
    "modalities:\n"
    "  image: {preset: avmnist, shape: [1, 28, 28]}\n"
    "  audio: {preset: avmnist, shape: [1, 20, 20]}\n"
)


def dup_case(id: str, text: str, expect: str, cmd: str = "search") -> None:
    case("duplicate-keys", id, expect)(lambda c: [cmd, str(c.text("exp.yaml", text))])


dup_case(
    "search-section-twice",
    _BASE + "search: {population: 4}\nseed: 1\nsearch: {population: 16}\n",
    "duplicate key 'search' (lines 5 and 7)",
)
dup_case("seed-twice", "seed: 1\n" + _BASE + "seed: 2\n", "duplicate key 'seed' (lines 1 and 6)")
dup_case(
    "nested-key-twice",
    _BASE + "search:\n  population: 4\n  generations: 2\n  population: 16\n",
    "duplicate key 'population' (lines 6 and 8)",
)
dup_case(
    "modality-twice",
    _BASE + "  image: {preset: avmnist, shape: [1, 20, 20]}\n",
    "duplicate key 'image' (lines 3 and 5)",
)
dup_case("name-twice", _BASE + "name: other\n", "duplicate key 'name' (lines 1 and 5)", "run")
dup_case(
    "flow-mapping-twice",
    _BASE + "pretrain: {epochs: 1, epochs: 50}\n",
    "duplicate key 'epochs' (lines 5 and 5)",
    "pretrain",
)
case("duplicate-keys", "override-value-twice", "duplicate key 'population'")(
    lambda c: ["search", str(c.config()), "-o", "search={population: 4, population: 8}"]
)
case("duplicate-keys", "data-option-twice", "duplicate key 'a'")(
    lambda c: ["data", "info", "npz", "--path", str(c.npz()), "--option", "kinds={a: 1, a: 2}"]
)
case("duplicate-keys", "run-config-twice", "duplicate key 'seed'")(
    lambda c: (
        (c.run / "config.yaml").write_text(
            (c.run / "config.yaml").read_text(encoding="utf-8") + "seed: 99\n", encoding="utf-8"
        ),
        ["status", str(c.run)],
    )[1]
)
_PUBLISHED = f'{{\n  "{LUT_KEY}": {{"lat": 0.1, "enrg": 1.0}},\n  "{LUT_KEY}": {{"lat": 9.0, "enrg": 9.0}}\n}}\n'
case("duplicate-keys", "lut-import-published-key-twice", "(lines 2 and 3)")(
    lambda c: ["lut", "import", str(c.text("t.json", _PUBLISHED)), "--device", "dev"]
)
case("duplicate-keys", "lut-import-entry-field-twice", "duplicate key 'lat'")(
    lambda c: [
        "lut",
        "import",
        str(c.text("t.json", '{"' + LUT_KEY + '": {"lat": 0.1, "lat": 5, "enrg": 1.0}}')),
        "--device",
        "dev",
    ]
)
case("duplicate-keys", "lut-import-ours-entries-twice", "duplicate key 'entries'")(
    lambda c: [
        "lut",
        "import",
        str(c.text("t.json", c.lut().read_text()[:-1] + ', "entries": {}}')),
        "--device",
        "dev",
    ]
)
case("duplicate-keys", "lut-show-device-twice", "duplicate key 'device'")(
    lambda c: [
        "lut",
        "show",
        str(c.text("t.json", c.lut().read_text()[:-1] + ', "device": {"name": "x"}}')),
    ]
)
case("duplicate-keys", "arch-cells-twice", "duplicate key 'cells'")(
    lambda c: [
        "cost",
        str(c.config()),
        "--arch",
        str(c.text("arch.json", c.arch().read_text()[:-1] + ', "cells": 4}')),
    ]
)
case("duplicate-keys", "preprocess-twice", "duplicate key 'schema_version'")(
    lambda c: [
        "predict",
        str(
            (
                (c.model / "preprocess.json").write_text(
                    (c.model / "preprocess.json").read_text()[:-2] + ', "schema_version": 1}'
                ),
                c.model,
            )[1]
        ),
        "-i",
        str(c.inputs()),
    ]
)
case("duplicate-keys", "search-index-twice", "duplicate key 'studies'")(
    lambda c: (
        (c.run / "search.json").write_text(
            (c.run / "search.json").read_text()[:-2] + ', "studies": {}}'
        ),
        ["status", str(c.run)],
    )[1]
)


ALL = [(kind, c) for kind, cases in CASES.items() for c in cases]


def test_the_table_is_large_and_covers_every_kind() -> None:
    assert len(ALL) >= 100
    assert set(CASES) == {
        "config",
        "run-dir",
        "dataset",
        "arch",
        "lut",
        "predict",
        "env",
        "options",
        "names",
        "read-only",
        "refused",
        "duplicate-keys",
    }
    assert len({f"{k}/{c.id}" for k, c in ALL}) == len(ALL)


@pytest.fixture(autouse=True)
def _never_build_a_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    """An accepted bad input must not go on to real work: reaching the data stage of the
    pipeline fails the case loudly (with a traceback)."""

    def reached(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("a bad input was accepted: the data stage was reached")

    monkeypatch.setattr("harmonic_nas.data.load_dataset", reached)


@pytest.mark.parametrize(("kind", "bad"), ALL, ids=[f"{k}/{c.id}" for k, c in ALL])
def test_bad_input(
    kind: str,
    bad: Case,
    _finished_template: Path,
    _exported_template: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ctx = Ctx(tmp_path, _finished_template, _exported_template)
    argv = bad.argv(ctx)
    for key, value in bad.env.items():
        monkeypatch.setenv(key, value)
    before = tree(tmp_path)
    cache = Path(os.environ["HARMONIC_NAS_CACHE"])
    outside = (tree(cache), sorted(p.name for p in tmp_path.parent.iterdir()))
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    assert code == 2, f"exit {code}; stderr: {err!r}"
    lines = [ln for ln in err.splitlines() if ln.strip() and not PROGRESS.match(ln)]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert bad.expect in lines[0], lines[0]
    assert tree(tmp_path) == before, "an artifact or input changed"
    after = (tree(cache), sorted(p.name for p in tmp_path.parent.iterdir()))
    assert after == outside, "something was written outside the test's directory"
