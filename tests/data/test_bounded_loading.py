"""One bad value never makes a loader allocate without bound, and no dtype is silently coerced
(issue 14 items 7 and 8): a label of 10**9, an absurd ``num_classes``, complex or object arrays
are refused in one line before anything of their size is built."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from harmonic_nas.data import build_dataset
from harmonic_nas.errors import DataError
from harmonic_nas.utils.io import read_npz

from .conftest import make_avmnist, make_npz


def _labels(n: int, bad: int) -> np.ndarray:
    y = np.arange(n) % 3
    y[0] = bad
    return y


# 10**6 is the case that fails on the old code without exhausting memory (a million class
# names, then a "class missing" message); 10**9 is the one of the issue.
@pytest.mark.parametrize("bad", [10**6, 10**9])
@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_huge_label_errors_fast_without_allocating(tmp_path: Path, split: str, bad: int) -> None:
    sizes = {"train": 30, "val": 10, "test": 10}
    root = make_npz(tmp_path / "ds", **{split: {"labels": _labels(sizes[split], bad)}})
    start = time.perf_counter()
    with pytest.raises(DataError) as exc:
        build_dataset("npz", path=root)
    assert time.perf_counter() - start < 10
    msg = str(exc.value)
    assert "\n" not in msg
    assert f"labels up to {bad} imply {bad + 1} classes but split 'val' has only 10 samples" in msg
    assert msg.endswith("relabel the classes as 0..K-1")


def test_label_beyond_int64_is_refused(tmp_path: Path) -> None:
    y = _labels(30, 0).astype(np.float64)
    y[3] = 1e30  # an integer-valued float that int64 cannot hold
    root = make_npz(tmp_path / "ds", train={"labels": y})
    with pytest.raises(DataError, match=r"labels of split 'train' range over \[0, 1e\+30\]"):
        build_dataset("npz", path=root)


def test_negative_label_is_refused(tmp_path: Path) -> None:
    root = make_npz(tmp_path / "ds", val={"labels": _labels(10, -4)})
    with pytest.raises(DataError, match=r"split 'val' range over \[-4, 2\]"):
        build_dataset("npz", path=root)


def test_huge_num_classes_option_is_refused(tmp_path: Path) -> None:
    root = make_npz(tmp_path / "ds")
    with pytest.raises(DataError, match="the option num_classes imply 1000000000 classes"):
        build_dataset("npz", path=root, options={"num_classes": 10**9})


def test_class_names_must_be_a_vector(tmp_path: Path) -> None:
    root = make_npz(tmp_path / "ds", train={"class_names": np.array([["a", "b", "c"]])})
    with pytest.raises(DataError, match=r"class_names of train.npz has shape \[1, 3\]"):
        build_dataset("npz", path=root)


def test_labels_in_range_still_load(tmp_path: Path) -> None:
    ds = build_dataset("npz", path=make_npz(tmp_path / "ds"))
    assert ds.num_classes == 3 and ds.class_names == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (np.ones((30, 5), dtype=np.complex64) * 1j, "complex"),
        (np.zeros(30, dtype=[("a", "f4"), ("b", "i4")]), "structured/void"),
        (np.zeros((30, 5), dtype="datetime64[s]"), "datetime"),
    ],
    ids=["complex", "structured", "datetime"],
)
def test_read_npz_refuses_non_real_dtypes(tmp_path: Path, value: np.ndarray, kind: str) -> None:
    path = tmp_path / "x.npz"
    np.savez(path, vec=value, ok=np.zeros(3))
    with pytest.raises(DataError) as exc:
        read_npz(path, fix="save real arrays")
    msg = str(exc.value)
    assert f"array 'vec' has {kind} dtype" in msg and msg.endswith("; save real arrays")


def test_read_npz_refuses_object_arrays_without_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    np.savez(path, vec=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="object \\(pickled\\) array, which is never loaded"):
        read_npz(path, fix="save real arrays")


def test_complex_modality_is_refused_by_the_npz_dataset(tmp_path: Path) -> None:
    root = make_npz(tmp_path / "ds", test={"vec": np.ones((10, 5), dtype=np.complex128)})
    with pytest.raises(DataError, match=r"test.npz array 'vec' has complex dtype complex128"):
        build_dataset("npz", path=root)


def test_complex_avmnist_file_is_refused(tmp_path: Path) -> None:
    root = make_avmnist(tmp_path / "av")
    img = np.load(root / "image" / "test_data.npy")
    np.save(root / "image" / "test_data.npy", img.astype(np.complex64))
    with pytest.raises(DataError, match=r"test_data\.npy has complex dtype complex64"):
        build_dataset("avmnist", path=root, options={"val_size": 10})
