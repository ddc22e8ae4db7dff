"""The Memes (Harm-P) loader on a small real-format fixture: images made here, captions by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harmonic_nas.data import build_dataset
from harmonic_nas.data.loaders.memes import CLASSES
from harmonic_nas.data.tokenizer import ByteTokenizer
from harmonic_nas.errors import DataError

# Hand-written captions in the style of the Harm-P annotations (harmfulness first in "labels").
CAPTIONS = {
    "train": [
        ("when the vaccine finally arrives", ["not harmful"]),
        ("wear a mask, save a life", ["not harmful"]),
        ("they say it's just a flu", ["somewhat harmful", "society"]),
        ("the virus was made in a lab by them", ["very harmful", "organization"]),
        ("me staying home for the 40th day", ["not harmful"]),
        ("doctors don't want you to know this cure", ["somewhat harmful", "individual"]),
        ("blame those people for spreading it", ["very harmful", "community"]),
        ("Social distancing: expert level", ["not harmful"]),
        ("5G towers cause the disease", ["very harmful", "society"]),
    ],
    "val": [
        ("quarantine snacks are gone already", ["not harmful"]),
        ("the numbers are all fake news", ["somewhat harmful", "organization"]),
        ("lock them up, they brought the virus", ["very harmful", "community"]),
    ],
    "test": [
        ("zoom meeting in pyjamas again", ["not harmful"]),
        ("drink bleach, says the meme", ["somewhat harmful", "individual"]),
        ("it's their fault, all of them", ["very harmful", "community"]),
    ],
}


def make_memes(root: Path, captions: dict[str, list[tuple[str, list[str]]]] = CAPTIONS) -> Path:
    """The Harm-P layout: images/<id>.png (RGB, various sizes) + annotations/<split>.jsonl."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    k = 0
    for split, rows in captions.items():
        lines = []
        for text, labels in rows:
            name = f"covid_memes_{k}.png"
            h, w = int(rng.integers(60, 140)), int(rng.integers(60, 140))
            img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
            Image.fromarray(img, mode="RGB").save(root / "images" / name)
            lines.append(
                json.dumps({"id": name[:-4], "image": name, "labels": labels, "text": text})
            )
            k += 1
        (root / "annotations" / f"{split}.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    return root


def test_memes_fixture_loads(tmp_path: Path) -> None:
    ds = build_dataset("memes", path=make_memes(tmp_path / "m"), options={"image_size": 32})
    assert ds.class_names == list(CLASSES) and ds.num_classes == 3 and ds.task == "classification"
    spec = {m.name: m for m in ds.modalities}
    tok = ByteTokenizer.from_json(ds.meta["tokenizers"]["text"])
    assert spec["image"].shape == (3, 32, 32) and spec["text"].kind == "text"
    assert spec["text"].shape == (tok.max_len,)
    assert tok.max_len == max(len(t.lower().encode()) for t, _ in CAPTIONS["train"])
    assert [len(ds.split(s)) for s in ("train", "val", "test")] == [9, 3, 3]
    assert ds.split("train").labels.tolist() == [0, 0, 1, 2, 0, 1, 2, 0, 2]
    assert (
        ds.split("val").inputs["text"][0].tolist()
        == tok.encode([CAPTIONS["val"][0][0]])[0].tolist()
    )
    assert ds.meta["normalization"]["text"]["mode"] == "none"
    assert ds.meta["normalization"]["image"]["mode"] == "scalar"


def test_default_geometry_is_the_papers() -> None:
    from harmonic_nas.data.loaders.memes import MemesOptions

    assert MemesOptions().image_size == 112


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([("", ["not harmful"])], r"sample 0 is an empty caption"),
        ([("fine", ["mildly harmful"])], r"label 'mildly harmful' is not one of"),
    ],
)
def test_bad_annotations_are_one_line(
    tmp_path: Path, rows: list[tuple[str, list[str]]], match: str
) -> None:
    root = make_memes(tmp_path / "m", {**CAPTIONS, "val": rows + CAPTIONS["val"]})
    with pytest.raises(DataError, match=match) as info:
        build_dataset("memes", path=root, options={"image_size": 16}, use_cache=False)
    assert "\n" not in str(info.value)


def test_missing_image_names_the_file(tmp_path: Path) -> None:
    root = make_memes(tmp_path / "m")
    (root / "images" / "covid_memes_0.png").unlink()
    with pytest.raises(DataError, match=r"names covid_memes_0.png, which is not in images/"):
        build_dataset("memes", path=root, options={"image_size": 16}, use_cache=False)


def test_config_parses_and_fits_the_presets() -> None:
    from harmonic_nas.backbones.factory import check_preset_fits
    from harmonic_nas.backbones.presets import get_preset
    from harmonic_nas.config import load_config

    cfg = load_config(Path(__file__).parents[2] / "configs" / "memes.yaml")
    assert cfg.dataset.name == "memes"
    image, text = cfg.modalities["image"], cfg.modalities["text"]
    assert image.preset == "mbv3-3stage" and tuple(image.shape) == (3, 112, 112)
    check_preset_fits(get_preset(image.preset), "image", tuple(image.shape))
    check_preset_fits(get_preset(text.preset), "text", tuple(text.shape))


def test_export_recipes_read_a_meme_image_and_caption(tmp_path: Path) -> None:
    """The recipes preprocess.json gets: a raw .png and a caption .txt give the dataset's arrays."""
    from harmonic_nas.config import parse_config
    from harmonic_nas.data.normalization import stats_tensors
    from harmonic_nas.results._raw import load_raw_file, raw_recipes

    root = make_memes(tmp_path / "m")
    ds = build_dataset("memes", path=root, options={"image_size": 32}, use_cache=False)
    cfg = parse_config(
        {
            "name": "m",
            "dataset": {"name": "memes", "path": str(root), "options": {"image_size": 32}},
            "modalities": {
                "image": {"preset": "mbv3-3stage", "shape": [3, 32, 32]},
                "text": {"preset": "text-1d", "shape": [ds.modality("text").shape[0]]},
            },
        }
    )
    recipes = raw_recipes(cfg, ds)
    image = load_raw_file(
        root / "images" / "covid_memes_9.png", "image", recipes["image"], (3, 32, 32)
    )
    mean, std = stats_tensors(ds.meta["normalization"]["image"], 3)
    want = ds.split("val").inputs["image"][0].double() * std + mean
    assert np.allclose(image, want.numpy(), atol=1e-3)
    (tmp_path / "c.txt").write_text(CAPTIONS["val"][0][0], encoding="utf-8")
    ids = load_raw_file(tmp_path / "c.txt", "text", recipes["text"], ds.modality("text").shape)
    assert ids.tolist() == ds.split("val").inputs["text"][0].tolist()
