"""Bad inputs of issue 25's red team, classes 4, 7, 8 and 9, through the real CLI entry point.

- **4 unbounded memory from small inputs**: compressed ``.npz`` bombs, headers claiming huge
  shapes, sparse ``.npy`` files, WAV rates and ``preprocess.json`` sizes. Each case runs in a
  child process whose peak memory (its own ``getrusage``) must stay under 1 GB; the timeout is
  only a hang guard. Every size is checked against :mod:`harmonic_nas.utils.limits`.
- **7 tracebacks where one line is promised**: file-system errors (name too long, disk full),
  Pillow's decompression-bomb guard, WAV and ``preprocess.json`` sample rates of 0 or below.
- **8 valid-looking inputs that fail late**: constant modalities, classes with one train
  sample, modality names that no exported model can carry, all refused where they enter.
- **9 misleading messages**: float64 values beyond float32, ``(N, 0)`` modalities, absurd LUT
  costs, ``lut import`` over an installed table or as ``host``, ``status`` on a foreign study.

Every table case: exit code 2, exactly one ``error:`` line, no traceback, every file under the
case's directory (inputs, the finished run, the LUT cache) byte-identical afterwards.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import harmonic_nas
from harmonic_nas.cli import main
from harmonic_nas.errors import HarmonicError
from harmonic_nas.utils.limits import MAX_ARRAY_BYTES

from ._bombs import npz_bomb, npz_claiming, png_claiming, wav_bytes
from .conftest import SYNTHETIC, experiment, tree
from .test_robustness import LUT_KEY, PROGRESS, Case, Ctx, _entry

CASES: dict[str, list[Case]] = {}
MEMORY: list[Case] = []


def case(kind: str, id: str, expect: str) -> Callable[..., Any]:
    def add(argv: Callable[[Ctx], list[str]]) -> Callable[[Ctx], list[str]]:
        CASES.setdefault(kind, []).append(Case(id, argv, expect))
        return argv

    return add


def memory_case(id: str, expect: str) -> Callable[..., Any]:
    def add(argv: Callable[[Ctx], list[str]]) -> Callable[[Ctx], list[str]]:
        MEMORY.append(Case(id, argv, expect))
        return argv

    return add


def assert_one_error_line(code: int, out: str, err: str, expect: str) -> None:
    assert "Traceback" not in out + err, err
    assert code == 2, f"exit {code}; stderr: {err!r}"
    lines = [ln for ln in err.splitlines() if ln.strip() and not PROGRESS.match(ln)]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expect in lines[0], lines[0]


# --------------------------------------------------------------------------- shared inputs

N_BIG = 1_000_000  # image (N, 1, 28, 28) + audio (N, 1, 20, 20) float32 + labels: 4.74 GB
N_HALF = 500_000  # 2.4 GB: under the limit alone, over it twice


def _model_npz(n: int) -> dict[str, tuple[tuple[int, ...], str]]:
    return {
        "image": ((n, 1, 28, 28), "<f4"),
        "audio": ((n, 1, 20, 20), "<f4"),
        "labels": ((n,), "<i8"),
    }


@pytest.fixture(scope="session")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real compressed bombs (a few MB each, made once) and a sparse 25 GB ``.npy`` file."""
    root = tmp_path_factory.mktemp("bombs")
    sparse = root / "sparse.npy"
    head = np.lib.format.header_data_from_array_1_0(np.zeros((1, 784), np.uint8))
    head["shape"] = (32_000_000, 784)  # 25 GB of uint8
    with open(sparse, "wb") as f:
        np.lib.format.write_array_header_1_0(f, head)
        f.truncate(f.tell() + 32_000_000 * 784)
    return {
        "big": npz_bomb(root / "big.npz", _model_npz(N_BIG)),
        "half": npz_bomb(root / "half.npz", _model_npz(N_HALF)),
        "sparse": sparse,
    }


def test_the_bombs_are_small_files_that_expand_beyond_the_limit(bombs: dict[str, Path]) -> None:
    from harmonic_nas.utils.io import array_bytes, npz_headers

    big = npz_headers(bombs["big"])
    assert sum(array_bytes(s, d) for s, d in big.values()) > MAX_ARRAY_BYTES
    assert bombs["big"].stat().st_size < 8_000_000
    half = sum(array_bytes(s, d) for s, d in npz_headers(bombs["half"]).values())
    assert MAX_ARRAY_BYTES / 2 < half < MAX_ARRAY_BYTES
    assert bombs["sparse"].stat().st_size > 25e9


def test_a_small_bomb_is_a_valid_npz(tmp_path: Path) -> None:
    """The bomb maker writes real archives: a small one loads, zeros of the claimed shape."""
    path = npz_bomb(tmp_path / "b.npz", {"a": ((9_000_000,), "<f4"), "b": ((3, 4), "<i8")})
    with np.load(path) as z:
        a, b = z["a"], z["b"]
    assert a.shape == (9_000_000,) and not a.any() and b.shape == (3, 4)


def _with_recipe(c: Ctx, modality: str, **raw: Any) -> Path:
    """The exported model's folder with keys of one input's ``raw`` recipe replaced."""

    def edit(meta: dict[str, Any]) -> None:
        for i in meta["inputs"]:
            if i["name"] == modality:
                for key, value in raw.items():
                    node = i["raw"]
                    *parents, leaf = key.split("__")
                    for p in parents:
                        node = node[p]
                    node[leaf] = value

    c.edit_json(c.model / "preprocess.json", edit)
    return c.model


def _png(c: Ctx, name: str = "digit.png", size: int = 28) -> Path:
    from PIL import Image

    path = c.root / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((size, size), np.uint8), mode="L").save(path)
    return path


def _wav(c: Ctx, rate: int, frames: int, name: str = "clip.wav") -> Path:
    return c.text(name, wav_bytes(rate, frames))


def _files(c: Ctx, image: Path, audio: Path, model: Path | None = None) -> list[str]:
    return [
        "predict",
        str(model or c.model),
        "--file",
        f"image={image}",
        "--file",
        f"audio={audio}",
    ]


def _npz_cfg(c: Ctx, root: Path, **modalities: list[int]) -> Path:
    """A search config on the ``npz`` dataset at ``root`` (image CNN, audio maxout)."""
    mods = {
        "image": {"preset": "avmnist", "shape": modalities.get("image", [1, 6, 6])},
        "audio": {"preset": "maxout", "shape": modalities.get("audio", [1, 4, 5])},
    }
    return c.config(dataset={"name": "npz", "path": str(root)}, modalities=mods)


# --------------------------------------------------------------------------- 4: memory


def _bomb_split(c: Ctx, bombs: dict[str, Path], split: str, bomb: str = "big") -> Path:
    root = c.npz()
    shutil.copy(bombs[bomb], root / f"{split}.npz")
    return root


BOMBS: dict[str, Path] = {}  # filled by the memory test from its fixture


memory_case("data-info-npz-bomb-train", "would take 4.74 GB of memory")(
    lambda c: ["data", "info", "npz", "--path", str(_bomb_split(c, BOMBS, "train"))]
)
memory_case("data-info-npz-bomb-test", "test.npz (3 arrays) would take 4.74 GB")(
    lambda c: ["data", "info", "npz", "--path", str(_bomb_split(c, BOMBS, "test"))]
)
memory_case("data-info-header-claims-285-TiB", "would take 314 TB of memory")(
    lambda c: [
        "data",
        "info",
        "npz",
        "--path",
        str(
            (
                root := c.npz(),
                npz_claiming(
                    root / "train.npz", {**_model_npz(12), "image": _model_npz(10**11)["image"]}
                ),
            )[0]
        ),
    ]
)
memory_case("data-info-labels-claim-1e12", "would take 8 TB of memory")(
    lambda c: [
        "data",
        "info",
        "npz",
        "--path",
        str(
            (
                root := c.npz(),
                npz_claiming(root / "val.npz", {"labels": ((10**12,), "<i8")}),
            )[0]
        ),
    ]
)
memory_case("search-npz-bomb-refused-before-any-stage", "would take 4.74 GB of memory")(
    lambda c: ["search", str(_npz_cfg(c, _bomb_split(c, BOMBS, "val")))]
)
memory_case("predict-input-bomb", "would take 4.74 GB of memory")(
    lambda c: ["predict", str(c.model), "-i", str(shutil.copy(BOMBS["big"], c.root / "in.npz"))]
)
memory_case("predict-input-header-claims", "would take 314 TB of memory")(
    lambda c: [
        "predict",
        str(c.model),
        "-i",
        str(npz_claiming(c.root / "in" / "x.npz", {"image": _model_npz(10**11)["image"]})),
    ]
)
memory_case("predict-inputs-together-over-the-limit", "the 2 input files together")(
    lambda c: [
        "predict",
        str(c.model),
        "-i",
        str(shutil.copy(BOMBS["half"], c.root / "a.npz")),
        "-i",
        str(shutil.copy(BOMBS["half"], c.root / "b.npz")),
    ]
)
memory_case("predict-input-sparse-npy", ".npy array, not an .npz archive")(
    lambda c: ["predict", str(c.model), "-i", str(BOMBS["sparse"])]
)


def _sparse_avmnist(c: Ctx) -> Path:
    """An avmnist folder whose image/train_data.npy is the sparse 25 GB file (a link to it)."""
    root = c.root.parent / "av"  # outside the hashed tree: the link would be read in full
    (root / "image").mkdir(parents=True)
    (root / "image" / "train_data.npy").symlink_to(BOMBS["sparse"])
    return root


memory_case("avmnist-sparse-25-GB", "would take 100 GB of memory")(
    lambda c: ["data", "info", "avmnist", "--path", str(_sparse_avmnist(c))]
)
memory_case("wav-rate-1-hz-resampled", "gives the sample rate 1")(
    lambda c: _files(c, _png(c), _wav(c, 1, 200_000))
)
memory_case("wav-at-its-own-rate-clip-too-long", "a clip must hold 1..16777216 samples")(
    lambda c: _files(
        c,
        _png(c),
        _wav(c, 768_000, 1000),
        _with_recipe(c, "audio", sample_rate=None, clip_seconds=600.0),
    )
)
memory_case("preprocess-clip-seconds-1e9", "raw.clip_seconds 1000000000.0 at 22050 Hz")(
    lambda c: _files(c, _png(c), _wav(c, 22050, 100), _with_recipe(c, "audio", clip_seconds=1e9))
)
memory_case("preprocess-n-fft-2e30", "raw.features.n_fft is 1073741824")(
    lambda c: _files(
        c, _png(c), _wav(c, 22050, 100), _with_recipe(c, "audio", features__n_fft=2**30)
    )
)
memory_case("preprocess-n-frames-1e7", "raw.features.n_frames is 10000000")(
    lambda c: _files(
        c, _png(c), _wav(c, 22050, 100), _with_recipe(c, "audio", features__n_frames=10**7)
    )
)
memory_case("preprocess-image-size-1e5", "raw.size is [100000, 100000]")(
    lambda c: _files(c, _png(c), _wav(c, 22050, 100), _with_recipe(c, "image", size=[10**5] * 2))
)

# The child's own peak: VmHWM of /proc/self/status (its address space since exec); elsewhere
# getrusage's ru_maxrss, which on Linux also counts the parent's size at fork (an upper bound).
DRIVER = """
import json, resource, sys
from harmonic_nas.cli import main
code = main(json.loads(sys.argv[1]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
try:
    with open("/proc/self/status") as f:
        peak = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
with open(sys.argv[2], "w") as f:
    json.dump({"code": code, "peak_bytes": peak}, f)
sys.exit(code)
"""

#: Peak memory a refused command may reach (the interpreter, torch and the CLI take ~0.4 GB).
PEAK_LIMIT = 1_000_000_000


def run_child(argv: list[str], tmp_path: Path, cache: Path) -> tuple[int, str, str, int]:
    """``harmonic-nas ARGV`` in a fresh interpreter: exit code, stdout, stderr, peak bytes."""
    src = str(Path(harmonic_nas.__file__).parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
        "HARMONIC_NAS_CACHE": str(cache),
    }
    peak_file = tmp_path / "peak.json"
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(argv), str(peak_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,  # a hang guard only: a refused command takes seconds
        check=False,
    )
    peak = json.loads(peak_file.read_text())["peak_bytes"] if peak_file.is_file() else -1
    return done.returncode, done.stdout, done.stderr, peak


@pytest.mark.slow
@pytest.mark.parametrize("bad", MEMORY, ids=[c.id for c in MEMORY])
def test_sizes_from_files_are_bounded(
    bad: Case,
    bombs: dict[str, Path],
    _finished_template: Path,
    _exported_template: Path,
    tmp_path: Path,
) -> None:
    BOMBS.update(bombs)
    root = tmp_path / "case"
    root.mkdir()
    ctx = Ctx(root, _finished_template, _exported_template)
    argv = bad.argv(ctx)
    before = tree(root)
    sparse = bombs["sparse"].stat()
    code, out, err, peak = run_child(argv, tmp_path, root / "cache")
    print(f"{bad.id}: exit {code}, peak {peak / 1e6:.0f} MB")  # shown by pytest -rP
    assert_one_error_line(code, out, err, bad.expect)
    assert 0 < peak < PEAK_LIMIT, f"peak memory {peak / 1e9:.2f} GB"
    assert tree(root) == before, "an artifact or input changed"
    assert bombs["sparse"].stat().st_mtime_ns == sparse.st_mtime_ns


@pytest.mark.slow
def test_a_long_low_rate_wav_is_read_in_bounded_memory(
    _exported_template: Path, _finished_template: Path, tmp_path: Path
) -> None:
    """A valid 1 kHz recording of 200 s (400 kB) resampled to the model's 22,050 Hz: only the
    first second is read and resampled, so the prediction works in bounded memory."""
    ctx = Ctx(tmp_path / "case", _finished_template, _exported_template)
    argv = _files(ctx, _png(ctx), _wav(ctx, 1000, 200_000))
    code, out, err, peak = run_child(argv, tmp_path, tmp_path / "cache")
    print(f"1 kHz wav of 200 s: exit {code}, peak {peak / 1e6:.0f} MB")  # shown by pytest -rP
    assert code == 0, err
    assert "Traceback" not in out + err
    assert 0 < peak < PEAK_LIMIT, f"peak memory {peak / 1e9:.2f} GB"


# --------------------------------------------------------------------------- 7: tracebacks

LONG = "x" * 300

case("tracebacks", "name-300-chars-search", "at most 100 characters")(
    lambda c: ["search", str(c.config(name=LONG))]
)
case("tracebacks", "name-300-chars-run", "at most 100 characters")(
    lambda c: ["run", str(c.config(name=LONG))]
)
case("tracebacks", "status-path-too-long", "File name too long; use a shorter name")(
    lambda c: ["status", str(c.root / LONG)]
)
case("tracebacks", "report-path-too-long", "File name too long; use a shorter name")(
    lambda c: ["report", str(c.root / LONG)]
)
case("tracebacks", "png-20000-squared-pillow-bomb", "is too large to decode")(
    lambda c: _files(c, png_claiming(c.root / "in" / "big.png", 20000, 20000), _wav(c, 22050, 10))
)
case("tracebacks", "png-10000-squared-pillow-warning", "is too large to decode")(
    lambda c: _files(c, png_claiming(c.root / "in" / "big.png", 10000, 10000), _wav(c, 22050, 10))
)
case("tracebacks", "png-9000-squared-over-our-limit", "is 9000x9000 pixels, more than the limit")(
    lambda c: _files(c, png_claiming(c.root / "in" / "big.png", 9000, 9000), _wav(c, 22050, 10))
)
case("tracebacks", "wav-rate-0", "gives the sample rate 0")(
    lambda c: _files(c, _png(c), _wav(c, 0, 100))
)
case("tracebacks", "wav-rate-above-768k", "gives the sample rate 4000000")(
    lambda c: _files(c, _png(c), _wav(c, 4_000_000, 100))
)
for _rate in (0, -22050, "22050", True, 22050.5):
    case("tracebacks", f"preprocess-sample-rate-{_rate}", "raw.sample_rate is")(
        lambda c, r=_rate: _files(
            c, _png(c), _wav(c, 22050, 100), _with_recipe(c, "audio", sample_rate=r)
        )
    )
case("tracebacks", "preprocess-clip-seconds-negative", "raw.clip_seconds is -1.0")(
    lambda c: _files(c, _png(c), _wav(c, 22050, 100), _with_recipe(c, "audio", clip_seconds=-1.0))
)
case("tracebacks", "preprocess-features-unknown-key", "unknown key 'hop'")(
    lambda c: _files(c, _png(c), _wav(c, 22050, 100), _with_recipe(c, "audio", features__hop=3))
)
case("tracebacks", "preprocess-image-mode-cmyk", "raw.mode is 'CMYK'")(
    lambda c: _files(c, _png(c), _wav(c, 22050, 100), _with_recipe(c, "image", mode="CMYK"))
)


def _disk_full_at(target: str) -> Callable[..., Any]:
    """A stand-in for ``tempfile.mkstemp`` that reports a full disk for temporary files of
    ``target`` (the atomic writes make one before each file)."""
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> Any:
        if target in str(kwargs.get("prefix", "")) + str(kwargs.get("dir", "")):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    return mkstemp


@pytest.mark.parametrize("target", ["candidates.json", "weights.pt", "config.yaml", "syn"])
def test_disk_full_during_search_is_one_line_and_the_rerun_finishes(
    target: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ENOSPC at the first write of each kind (the run's config, a candidate's weights, the
    candidate list, any file of the run) is one line, exit 2; the rerun with space resumes."""
    import tempfile

    monkeypatch.setenv("HARMONIC_NAS_SEARCH_PROBLEM", SYNTHETIC)
    monkeypatch.setenv("HARMONIC_NAS_SYNTHETIC", json.dumps({}))
    config = tmp_path / "syn.yaml"
    config.write_text(yaml.safe_dump(experiment(tmp_path / "runs")), encoding="utf-8")
    real = tempfile.mkstemp
    monkeypatch.setattr(tempfile, "mkstemp", _disk_full_at(target))
    code = main(["search", str(config)])
    out, err = capsys.readouterr()
    assert_one_error_line(code, out, err, "No space left on device")
    assert "free disk space" in err
    monkeypatch.setattr(tempfile, "mkstemp", real)
    assert main(["-q", "search", str(config)]) == 0, capsys.readouterr().err
    assert (tmp_path / "runs" / "syn" / "pareto.json").is_file()


def test_the_study_folder_that_cannot_be_made_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full disk while the SQLite study's folder is made names the path and the fix."""
    from harmonic_nas.search.storage import open_storage

    real = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.name == "full":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(HarmonicError) as exc:
        open_storage(f"sqlite:///{tmp_path / 'full' / 'study.db'}")
    assert f"cannot write {tmp_path / 'full'}: No space left on device" in str(exc.value)
    assert "free disk space" in str(exc.value)


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        (errno.ENOSPC, "free disk space"),
        (errno.ENAMETOOLONG, "use a shorter name"),
        (errno.EROFS, "the filesystem is read-only"),
        (errno.EIO, "check the path and its permissions"),
    ],
)
def test_an_os_error_no_reader_or_writer_wrapped_is_one_line(
    code: int,
    fix: str,
    finished_run: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI's last resort: a raw OSError from any command is one line naming the path, what
    the OS said and the fix, never a traceback."""

    def fail(*_a: Any, **_k: Any) -> None:
        raise OSError(code, os.strerror(code), str(finished_run / "study.db"))

    monkeypatch.setattr("harmonic_nas.search.study_status", fail)
    status = main(["status", str(finished_run)])
    out, err = capsys.readouterr()
    assert_one_error_line(status, out, err, f"cannot access {finished_run / 'study.db'}")
    assert os.strerror(code) in err and fix in err


def test_a_storage_failure_outside_the_wrapped_calls_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite's "database or disk is full" from a storage call no caller wrapped."""
    import sqlalchemy
    from optuna.storages import RDBStorage

    monkeypatch.setenv("HARMONIC_NAS_SEARCH_PROBLEM", SYNTHETIC)
    monkeypatch.setenv("HARMONIC_NAS_SYNTHETIC", json.dumps({}))
    config = tmp_path / "syn.yaml"
    config.write_text(yaml.safe_dump(experiment(tmp_path / "runs")), encoding="utf-8")

    def full(*_a: Any, **_k: Any) -> None:
        raise sqlalchemy.exc.OperationalError("UPDATE", {}, Exception("database or disk is full"))

    monkeypatch.setattr(RDBStorage, "set_study_user_attr", full)
    code = main(["search", str(config)])
    out, err = capsys.readouterr()
    assert_one_error_line(code, out, err, "disk is full")
    assert "rerun the same command" in err


# --------------------------------------------------------------------------- 8: fail late


def data_case(id: str, expect: str, **overrides: dict[str, Any]) -> None:
    case("late", id, expect)(lambda c: ["data", "info", "npz", "--path", str(c.npz(**overrides))])


def _const(n: int, shape: tuple[int, ...], value: float) -> np.ndarray:
    return np.full((n, *shape), value, dtype=np.float32)


data_case(
    "constant-zero-modality",
    "modality 'image' is constant in split 'train' (every value is 0)",
    train={"image": _const(12, (1, 6, 6), 0.0)},
)
data_case(
    "constant-nonzero-modality",
    "modality 'audio' is constant in split 'train' (every value is 5)",
    train={"audio": _const(12, (4, 5), 5.0)},
)
data_case(
    "near-constant-modality",
    "modality 'audio' is constant in split 'train' (values span only",
    train={
        "audio": (1e6 + np.random.default_rng(0).integers(0, 2, (12, 4, 5)) * 0.0625).astype(
            np.float32
        )
    },
)
data_case(
    "one-train-sample-per-class",
    "class 0 ('0') has 1 train sample(s)",
    train={
        "image": np.random.default_rng(0).standard_normal((3, 1, 6, 6)),
        "audio": np.random.default_rng(1).standard_normal((3, 4, 5)),
        "labels": np.arange(3),
    },
)
data_case(
    "non-ascii-modality-name",
    "modality name 'bildä' is not an ASCII identifier",
    train={"bildä": np.zeros((12, 3))},
    val={"bildä": np.zeros((6, 3))},
    test={"bildä": np.zeros((6, 3))},
)
data_case(
    "keyword-modality-name",
    "modality name 'class' is not an ASCII identifier",
    train={"class": np.zeros((12, 3))},
    val={"class": np.zeros((6, 3))},
    test={"class": np.zeros((6, 3))},
)
case("late", "one-train-sample-per-class-search", "class 0 ('0') has 1 train sample(s)")(
    lambda c: [
        "search",
        str(
            _npz_cfg(
                c,
                c.npz(
                    train={
                        "image": np.ones((3, 1, 6, 6)) * np.arange(3)[:, None, None, None],
                        "audio": np.ones((3, 4, 5)) * np.arange(3)[:, None, None],
                        "labels": np.arange(3),
                    }
                ),
            )
        ),
    ]
)


def _named(c: Ctx, name: str) -> list[str]:
    """``search`` on an npz dataset whose image modality is called ``name`` (config and arrays
    agree: the name itself is the one problem)."""
    rng = np.random.default_rng(0)
    arrays = {
        split: {"image": None, name: rng.standard_normal((n, 1, 6, 6))}
        for split, n in (("train", 12), ("val", 6), ("test", 6))
    }
    root = c.npz(**arrays)
    mods = {
        name: {"preset": "avmnist", "shape": [1, 6, 6]},
        "audio": {"preset": "maxout", "shape": [1, 4, 5]},
    }
    return ["search", str(c.config(dataset={"name": "npz", "path": str(root)}, modalities=mods))]


for _name in ("bildä", "image-left", "2image", "lambda"):
    case("late", f"config-modality-name-{_name.encode().hex()[:12]}", "is not an ASCII identifier")(
        lambda c, n=_name: _named(c, n)
    )


# --------------------------------------------------------------------------- 9: messages

data_case(
    "float64-beyond-float32",
    "holds finite values up to 1e+300 in magnitude, beyond float32's range",
    train={"image": np.full((12, 1, 6, 6), 1e300)},
)
data_case(
    "float64-negative-beyond-float32",
    "holds finite values up to 4e+39 in magnitude",
    val={"audio": np.full((6, 4, 5), -4e39)},
)
case("messages", "predict-float64-beyond-float32", "beyond float32's range")(
    lambda c: ["predict", str(c.model), "-i", str(c.inputs(image=np.full((2, 1, 28, 28), 1e300)))]
)
data_case(
    "modality-n-by-0",
    "modality 'audio' has sample shape [0], which holds no values",
    train={"audio": np.zeros((12, 0))},
    val={"audio": np.zeros((6, 0))},
    test={"audio": np.zeros((6, 0))},
)
data_case(
    "modality-n-by-3-by-0",
    "modality 'audio' has sample shape [1, 3, 0], which holds no values",
    train={"audio": np.zeros((12, 3, 0))},
    val={"audio": np.zeros((6, 3, 0))},
    test={"audio": np.zeros((6, 3, 0))},
)
for _field in ("latency.mean", "energy.mean", "latency.median"):
    case("messages", f"lut-entry-1e308-{_field}", "above the limit of 1e+09 for one layer")(
        lambda c, f=_field: ["lut", "show", str(c.lut(_entry(f, 1e308)))]
    )


def _published(c: Ctx, lat: float, name: str = "pub.json") -> Path:
    return c.text(name, json.dumps({LUT_KEY: {"lat": lat, "enrg": 1.0}}))


case("messages", "lut-import-published-1e308", "above the limit of 1e+09 for one layer")(
    lambda c: ["lut", "import", str(_published(c, 1e308)), "--device", "dev"]
)
case("messages", "lut-import-as-host", "device 'host' is this machine")(
    lambda c: ["lut", "import", str(_published(c, 0.5)), "--device", "host"]
)


def _installed_then_other(c: Ctx) -> list[str]:
    assert main(["-q", "lut", "import", str(_published(c, 0.5, "a.json")), "--device", "dev"]) == 0
    return ["lut", "import", str(_published(c, 0.7, "b.json")), "--device", "dev"]


case("messages", "lut-import-over-an-installed-table", "pass --force to replace it")(
    _installed_then_other
)


def _foreign_study(c: Ctx) -> list[str]:
    """``status RUN --storage`` naming a copy of the run's study made with another fusion.C."""
    import optuna

    run = c.run
    other = c.root / "in" / "other.db"
    other.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal"):  # the study may still be in the write-ahead log
        if (run / f"study.db{suffix}").is_file():
            shutil.copy(run / f"study.db{suffix}", f"{other}{suffix}")
    storage = optuna.storages.RDBStorage(f"sqlite:///{other}")
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        identity = dict(study.user_attrs["config_identity"])
        identity["fusion.C"] = 999
        study.set_user_attr("config_identity", identity)
        study.set_user_attr("config_hash", "0" * 16)
    storage.engine.dispose()
    argv = ["status", str(run), "--storage", f"sqlite:///{other}"]
    # SQLite may leave an empty write-ahead log beside a database it opened (not content): it is
    # made here once, so that the table compares what a refused status changes after that
    main(argv)
    return argv


case("messages", "status-foreign-study", "was not made by the run")(_foreign_study)


ALL = [(kind, c) for kind, cases in CASES.items() for c in cases]


def test_the_table_covers_the_four_classes() -> None:
    assert set(CASES) == {"tracebacks", "late", "messages"}
    assert len(ALL) + len(MEMORY) >= 30 and len(MEMORY) >= 10
    ids = [f"{k}/{c.id}" for k, c in ALL] + [c.id for c in MEMORY]
    assert len(set(ids)) == len(ids)


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
    monkeypatch.setenv("HARMONIC_NAS_CACHE", str(tmp_path / "cache"))  # inside the hashed tree
    ctx = Ctx(tmp_path, _finished_template, _exported_template)
    argv = bad.argv(ctx)
    capsys.readouterr()
    before = tree(tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    assert_one_error_line(code, out, err, bad.expect)
    assert tree(tmp_path) == before, "an artifact or input changed"


@pytest.mark.parametrize(("n", "text"), [(1, "1 layer, energy source"), (61, "61 layers, energy")])
def test_run_counts_the_layers_of_the_table_it_uses(
    n: int, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from harmonic_nas.cli.run import _Render
    from harmonic_nas.hardware.lut import LUT, DeviceInfo, LUTEntry

    lut = LUT(DeviceInfo("host", backend="onnxruntime"), "model:constant power 15 W x latency")
    lut.entries.update(
        {
            f"LinearLayer-input:{k}-in_ch:{k}-out_ch:2": LUTEntry.point(0.1, 1.0)
            for k in range(1, n + 1)
        }
    )
    _Render(None)._profile(lut)  # type: ignore[arg-type]
    assert capsys.readouterr().out.startswith(text)
