from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harmonic_nas.data import build_dataset, cache_dir, dataset_fingerprint
from harmonic_nas.data.av_digits import DIGIT_WORDS, load_mnist5k, pca_remove_energy
from harmonic_nas.errors import DataError


def test_shapes_dtypes_sizes_and_normalisation(tiny_av: dict[str, int]) -> None:
    ds = build_dataset("av-digits", options=tiny_av, seed=0, use_cache=False)
    assert ds.task == "classification" and ds.num_classes == 10
    assert ds.class_names == list(DIGIT_WORDS)
    assert [(m.name, m.kind, m.shape) for m in ds.modalities] == [
        ("image", "image", (1, 28, 28)),
        ("audio", "audio", (1, 20, 20)),
    ]
    for split, per_class in (("train", 4), ("val", 2), ("test", 2)):
        s = ds.split(split)
        assert len(s) == 10 * per_class
        assert s.inputs["image"].shape == (10 * per_class, 1, 28, 28)
        assert s.inputs["audio"].shape == (10 * per_class, 1, 20, 20)
        assert s.inputs["image"].dtype == torch.float32 and s.labels.dtype == torch.int64
        assert torch.bincount(s.labels, minlength=10).tolist() == [per_class] * 10
    for mod in ("image", "audio"):
        x = ds.split("train").inputs[mod].double()
        assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1) < 1e-4
    norm = ds.meta["normalization"]
    assert isinstance(norm, dict) and set(norm) == {"image", "audio"}


def test_build_is_bit_identical_for_a_seed_and_differs_across_seeds(
    tiny_av: dict[str, int],
) -> None:
    a = build_dataset("av-digits", options=tiny_av, seed=5, use_cache=False)
    b = build_dataset("av-digits", options=tiny_av, seed=5, use_cache=False)
    c = build_dataset("av-digits", options=tiny_av, seed=6, use_cache=False)
    assert a.meta["fingerprint"] == b.meta["fingerprint"] == dataset_fingerprint(b)
    for split in ("train", "val", "test"):
        for mod in ("image", "audio"):
            assert torch.equal(a.split(split).inputs[mod], b.split(split).inputs[mod])
        assert torch.equal(a.split(split).labels, b.split(split).labels)
    assert c.meta["fingerprint"] != a.meta["fingerprint"]


def test_speakers_are_disjoint_and_test_voices_are_unseen(tiny_av: dict[str, int]) -> None:
    ds = build_dataset("av-digits", options=tiny_av, seed=1, use_cache=False)
    speakers = ds.meta["speakers"]
    assert isinstance(speakers, dict)
    train, val, test = (set(speakers[s]) for s in ("train", "val", "test"))
    assert len(train) == 4 and len(val) == 2 and len(test) == 2
    assert not (train & test) and not (val & test) and not (train & val)

    def variants(ids: set[str]) -> set[str]:
        return {i.split("/")[0].split("+")[1] for i in ids}

    assert not (variants(train) & variants(test))
    assert not (variants(train) & variants(val))
    # every sample is attributed to a speaker of its own split
    index = ds.meta["speaker_index"]
    assert isinstance(index, dict)
    for split in ("train", "val", "test"):
        assert len(index[split]) == len(ds.split(split))
        assert set(index[split]) <= set(range(len(speakers[split])))


def test_images_are_real_mnist_and_disjoint_across_splits(tiny_av: dict[str, int]) -> None:
    ds = build_dataset("av-digits", options=tiny_av, seed=2, use_cache=False)
    used = ds.meta["mnist_index"]
    assert isinstance(used, dict)
    sets = [set(used[s]) for s in ("train", "val", "test")]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    _, labels = load_mnist5k()
    for split in ("train", "val", "test"):
        assert labels[used[split]].tolist() == ds.split(split).labels.tolist()


def test_cache_is_written_reused_and_survives_corruption(tiny_av: dict[str, int]) -> None:
    opts = {**tiny_av, "test_per_class": 3}
    first = build_dataset("av-digits", options=opts, seed=0)
    path = Path(str(first.meta["cache_file"]))
    assert path.is_file() and path.parent == cache_dir()
    again = build_dataset("av-digits", options=opts, seed=0)
    assert torch.equal(again.split("test").inputs["audio"], first.split("test").inputs["audio"])
    assert again.meta["fingerprint"] == first.meta["fingerprint"]
    path.write_bytes(b"not a torch file")
    rebuilt = build_dataset("av-digits", options=opts, seed=0)
    assert rebuilt.meta["fingerprint"] == first.meta["fingerprint"]
    assert path.stat().st_size > 1000


def test_logmel_option_changes_the_audio_shape(tiny_av: dict[str, int]) -> None:
    ds = build_dataset(
        "av-digits",
        options={**tiny_av, "features": "logmel", "n_mels": 24, "n_frames": 16},
        use_cache=False,
    )
    assert ds.modality("audio").shape == (1, 24, 16)
    assert ds.split("val").inputs["audio"].shape == (20, 1, 24, 16)


def test_options_arrive_as_strings_from_the_cli(tiny_av: dict[str, int]) -> None:
    opts = {k: str(v) for k, v in tiny_av.items()} | {"time_shift": "false", "snr_db_min": "-3"}
    ds = build_dataset("av-digits", options=opts, use_cache=False)
    assert ds.meta["options"]["time_shift"] is False  # type: ignore[index]
    assert ds.meta["options"]["snr_db_min"] == -3.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"trian_per_class": 3}, "unknown option 'trian_per_class'"),
        ({"train_per_class": "many"}, "option 'train_per_class' must be int"),
        ({"train_per_class": 2.5}, "option 'train_per_class' must be int"),
        ({"features": "wavelet"}, "option 'features' must be one of mfcc, logmel"),
        ({"pca_energy": 1.5}, r"option 'pca_energy' = 1.5 is out of range"),
        ({"train_per_class": 400, "test_per_class": 200}, "MNIST-5k has 500"),
        ({"snr_db_min": 5, "snr_db_max": 0}, "snr_db_min must not exceed snr_db_max"),
        ({"n_mfcc": 50, "n_mels": 40}, r"n_mfcc \(50\) must not exceed n_mels"),
    ],
)
def test_bad_options_are_one_line_data_errors(options: dict[str, object], match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        build_dataset("av-digits", options=options, use_cache=False)
    assert "\n" not in str(info.value)


def test_pca_energy_removal_removes_the_requested_variance() -> None:
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(16, 16, generator=g))[0]
    scales = torch.tensor([8.0, 4.0, 2.0, 1.0] + [0.1] * 12)
    x = (torch.randn(400, 16, generator=g) * scales) @ basis.T
    (out, other), k = pca_remove_energy(x, [x[:10]], 0.7)
    # the first component holds 64/(64+16+4+1+0.12) ~ 75 % of the variance: one component goes
    assert k == 1
    var_before = float(x.var(0).sum())
    var_after = float(out.var(0).sum())
    assert var_after < 0.35 * var_before
    assert torch.allclose(other, out[:10], atol=1e-5)
    same, k0 = pca_remove_energy(x, [], 0.0)
    assert k0 == 0 and torch.equal(same[0], x)


def test_build_does_not_depend_on_the_thread_count(tiny_av: dict[str, int]) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = build_dataset("av-digits", options=tiny_av, seed=8, use_cache=False)
        torch.set_num_threads(2)
        two = build_dataset("av-digits", options=tiny_av, seed=8, use_cache=False)
        assert torch.get_num_threads() == 2  # restored after the build
    finally:
        torch.set_num_threads(before)
    assert one.meta["fingerprint"] == two.meta["fingerprint"]


def test_progress_is_reported(tiny_av: dict[str, int]) -> None:
    seen: dict[str, tuple[int, int]] = {}
    build_dataset(
        "av-digits",
        options=tiny_av,
        use_cache=False,
        progress=lambda task, done, total: seen.__setitem__(task, (done, total)),
    )
    assert seen["synthesising speech"] == (80, 80)
    assert seen["audio features"] == (3, 3)
