"""The package's own text tokenizer: UTF-8 bytes with a vocabulary fitted on the train split.

Offline and fully described by a small JSON object (stored in the dataset's metadata, the run and
every exported model's ``preprocess.json``), so that a runtime with only numpy can reproduce it:

1. text -> Unicode NFC -> lower case (``lowercase``) -> UTF-8 bytes, cut to ``max_len`` bytes;
2. each byte -> its id: ``2 + rank`` of the byte in ``vocab`` (the sorted bytes seen in the train
   split), ``1`` for a byte never seen in train, ``0`` pads to ``max_len``.

``max_len`` is the longest train text in bytes (at most ``max_len_cap``). The model's text input is
the ``(max_len,)`` id vector (as float32 values; the model casts them back to integer ids for its
embedding lookup). Only the train split is read when fitting.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harmonic_nas.errors import DataError

logger = logging.getLogger(__name__)

TOKENIZER_TYPE = "utf8-bytes"
PAD, UNKNOWN, FIRST = 0, 1, 2
#: ids the embedding must hold: pad, unknown and every byte value
VOCAB_SIZE = FIRST + 256


def as_texts(values: Any, where: str) -> list[str]:
    """A 1-D array / list of strings as Python strings; a one-line :class:`DataError` for
    anything else (numbers, bytes that are not UTF-8, control characters, empty strings)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(
            f"{where}: text must be one string per sample (shape (N,)), got shape {list(arr.shape)}"
        )
    if arr.dtype.kind not in ("U", "S"):
        raise DataError(
            f"{where}: a text modality needs strings, got {arr.dtype} values; store the text "
            "as a string array (numpy.array(['a caption', ...]))"
        )
    out: list[str] = []
    for i, v in enumerate(arr.tolist()):
        if isinstance(v, bytes):
            try:
                v = v.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(
                    f"{where}: sample {i} is not UTF-8 text (non-text content); store text"
                ) from None
        text = str(v)
        if not text.strip():
            raise DataError(f"{where}: sample {i} is an empty caption; give every sample text")
        if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in text):
            raise DataError(
                f"{where}: sample {i} holds control characters (non-text content); store text"
            )
        out.append(text)
    return out


@dataclass(frozen=True)
class ByteTokenizer:
    """UTF-8 byte tokenizer (see the module docstring); build it with :meth:`fit`."""

    vocab: tuple[int, ...]
    max_len: int
    lowercase: bool = True

    @classmethod
    def fit(
        cls, texts: Iterable[str], *, max_len_cap: int = 128, lowercase: bool = True
    ) -> ByteTokenizer:
        """Fit on the train split's texts: the bytes they use and their longest length."""
        seen: set[int] = set()
        longest = 1
        for t in texts:
            b = cls._bytes(t, lowercase)
            seen.update(b)
            longest = max(longest, len(b))
        return cls(tuple(sorted(seen)), min(longest, max_len_cap), lowercase)

    @staticmethod
    def _bytes(text: str, lowercase: bool) -> bytes:
        t = unicodedata.normalize("NFC", text)
        return (t.lower() if lowercase else t).encode("utf-8")

    def table(self) -> np.ndarray:
        """Byte value -> id (256 entries)."""
        table = np.full(256, UNKNOWN, dtype=np.int64)
        table[list(self.vocab)] = np.arange(FIRST, FIRST + len(self.vocab))
        return table

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(N, max_len)`` float32 ids."""
        table = self.table()
        out = np.zeros((len(texts), self.max_len), dtype=np.float32)
        for i, t in enumerate(texts):
            b = np.frombuffer(self._bytes(t, self.lowercase)[: self.max_len], dtype=np.uint8)
            out[i, : b.size] = table[b]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "type": TOKENIZER_TYPE,
            "normalization": "NFC",
            "lowercase": self.lowercase,
            "max_len": self.max_len,
            "vocab": list(self.vocab),
            "pad_id": PAD,
            "unknown_id": UNKNOWN,
            "first_id": FIRST,
            "vocab_size": VOCAB_SIZE,
            "fitted_on": "train",
        }

    @classmethod
    def from_json(cls, data: Any) -> ByteTokenizer:
        if not isinstance(data, dict) or data.get("type") != TOKENIZER_TYPE:
            raise DataError(f"not a {TOKENIZER_TYPE} tokenizer description: {data!r:.80}")
        vocab = data.get("vocab")
        max_len = data.get("max_len")
        if (
            not isinstance(vocab, list)
            or not all(isinstance(v, int) and 0 <= v < 256 for v in vocab)
            or not isinstance(max_len, int)
            or not 1 <= max_len <= 1 << 16
        ):
            raise DataError("tokenizer description has a bad vocab or max_len")
        return cls(tuple(vocab), max_len, bool(data.get("lowercase", True)))


__all__ = ["PAD", "UNKNOWN", "VOCAB_SIZE", "ByteTokenizer", "as_texts"]
