"""A candidate's per-sample val decisions, stored with its evaluation (one owner of the format).

The instrument's bootstrap intervals resample the val split and recompute every candidate's score
from its decisions (``benchmarks/``, :mod:`harmonic_nas.search.front_metrics`), so an evaluation
keeps them: under ``Evaluation.extra["val_pred"]`` (a trial attribute of the study) as

``{"v": 1, "kind": "classes" | "bits", "n": N, "k": K, "data": base64}``

* ``classes`` (classification): N class indices as little-endian uint16 (K = number of classes);
* ``bits`` (multilabel): the N x K 0/1 matrix, each row packed with ``numpy.packbits``.

1,500 val samples cost 4 KB (classes) or 6 KB (24 labels). Decoding checks every size against
the payload before allocating.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

import numpy as np

from harmonic_nas.errors import HarmonicError

logger = logging.getLogger(__name__)

VERSION = 1
#: the most val samples / labels a stored record may claim (bounds every allocation)
MAX_SAMPLES = 1_000_000
MAX_LABELS = 65_535


def encode(pred: Any, n_classes: int) -> dict[str, Any]:
    """Encode class indices (1-D) or a 0/1 label matrix (2-D) of one candidate's val split."""
    arr = np.asarray(pred)
    if arr.ndim == 1:
        if arr.size and (arr.min() < 0 or arr.max() >= min(n_classes, MAX_LABELS)):
            raise ValueError(f"class indices must lie in [0, {n_classes})")
        data = arr.astype("<u2").tobytes()
        kind = "classes"
    elif arr.ndim == 2:
        if arr.shape[1] != n_classes:
            raise ValueError(f"a label matrix needs {n_classes} columns, got {arr.shape[1]}")
        data = np.packbits(arr.astype(bool), axis=1).tobytes()
        kind = "bits"
    else:
        raise ValueError(f"predictions must be 1-D or 2-D, got shape {arr.shape}")
    return {
        "v": VERSION,
        "kind": kind,
        "n": int(arr.shape[0]),
        "k": int(n_classes),
        "data": base64.b64encode(data).decode("ascii"),
    }


def decode(record: Any) -> np.ndarray:
    """The array :func:`encode` stored: int64 class indices ``(N,)`` or an int8 0/1 ``(N, K)``."""
    if not isinstance(record, dict) or record.get("v") != VERSION:
        raise HarmonicError(f"val predictions record has an unknown version: {record!r:.80}")
    kind, n, k = record.get("kind"), record.get("n"), record.get("k")
    if not (isinstance(n, int) and 0 <= n <= MAX_SAMPLES and isinstance(k, int)):
        raise HarmonicError("val predictions record has an invalid size")
    if not 1 <= k <= MAX_LABELS:
        raise HarmonicError("val predictions record has an invalid label count")
    data = record.get("data")
    row = 2 if kind == "classes" else (k + 7) // 8
    if kind not in ("classes", "bits") or not isinstance(data, str):
        raise HarmonicError("val predictions record has an unknown kind")
    if len(data) > 4 * ((n * row + 2) // 3) + 4:
        raise HarmonicError("val predictions record is longer than its size says")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise HarmonicError("val predictions record is not base64") from None
    if len(raw) != n * row:
        raise HarmonicError("val predictions record does not match its size")
    if kind == "classes":
        out = np.frombuffer(raw, dtype="<u2").astype(np.int64)
        if out.size and out.max() >= k:
            raise HarmonicError("val predictions record holds a class index out of range")
        return out
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8).reshape(n, row), axis=1, count=k)
    return bits.astype(np.int8)
