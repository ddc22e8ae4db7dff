"""Small files that claim huge sizes, made without ever holding those sizes in memory.

:func:`npz_bomb` writes a real ``.npz`` whose arrays are zeros compressed about 1,000 : 1: a
file of a few megabytes that numpy would expand to gigabytes. The deflate stream is built from
one compressed chunk of zeros repeated (each piece is flushed and independent, so the stream is
valid), and the CRC-32 of the expanded data is combined arithmetically (zlib's
``crc32_combine``), so that making a 5 GB bomb takes well under a second.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np

_CHUNK = 1 << 24  # 16 MiB of zeros per repeated piece


def _gf2_times(mat: list[int], vec: int) -> int:
    out, i = 0, 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of ``A + B`` from ``crc32(A)``, ``crc32(B)`` and ``len(B)`` (zlib's algorithm)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << (n - 1) for n in range(1, 32)]
    even = _gf2_square(odd)
    odd = _gf2_square(even)
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def _crc_zeros(n: int) -> int:
    """CRC-32 of ``n`` zero bytes, by doubling."""
    crc, size = 0, 0
    piece, piece_crc = _CHUNK, zlib.crc32(bytes(_CHUNK))
    while n - size >= piece:
        crc, size = crc32_combine(crc, piece_crc, piece), size + piece
    rest = n - size
    return crc32_combine(crc, zlib.crc32(bytes(rest)), rest)


def _deflate(data: bytes, final: bool = False) -> bytes:
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    return co.compress(data) + co.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)


def npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    """The ``.npy`` header of an array of ``shape`` and ``dtype`` (no data)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def _member(shape: tuple[int, ...], dtype: str) -> tuple[int, int, bytes]:
    """(crc, expanded size, deflated bytes) of an ``.npy`` of zeros of ``shape``."""
    head = npy_header(shape, dtype)
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    zeros = _deflate(bytes(_CHUNK))
    k, rest = divmod(n, _CHUNK)
    data = _deflate(head) + zeros * k + _deflate(bytes(rest)) + _deflate(b"", final=True)
    crc = crc32_combine(zlib.crc32(head), _crc_zeros(n), n)
    return crc, len(head) + n, data


def npz_bomb(path: Path, arrays: dict[str, tuple[tuple[int, ...], str]]) -> Path:
    """An ``.npz`` of zero arrays ``{name: (shape, dtype)}``, deflated (each under 4 GiB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    central = []
    with open(path, "wb") as f:
        for name, (shape, dtype) in arrays.items():
            crc, size, data = _member(shape, dtype)
            assert size < 2**32, "one member must stay under 4 GiB (no zip64 here)"
            fname = f"{name}.npy".encode()
            offset = f.tell()
            f.write(
                struct.pack(
                    "<IHHHHHIIIHH",
                    0x04034B50,
                    20,
                    0,
                    8,
                    0,
                    0x21,
                    crc,
                    len(data),
                    size,
                    len(fname),
                    0,
                )
            )
            f.write(fname)
            f.write(data)
            central.append(
                struct.pack(
                    "<IHHHHHHIIIHHHHHII",
                    0x02014B50,
                    20,
                    20,
                    0,
                    8,
                    0,
                    0x21,
                    crc,
                    len(data),
                    size,
                    len(fname),
                    0,
                    0,
                    0,
                    0,
                    0,
                    offset,
                )
                + fname
            )
        start = f.tell()
        blob = b"".join(central)
        f.write(blob)
        f.write(
            struct.pack(
                "<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(blob), start, 0
            )
        )
    return path


def npz_claiming(path: Path, arrays: dict[str, tuple[tuple[int, ...], str]]) -> Path:
    """An ``.npz`` whose arrays' headers claim ``{name: (shape, dtype)}`` but hold 16 bytes."""
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, (shape, dtype) in arrays.items():
            zf.writestr(f"{name}.npy", npy_header(shape, dtype) + bytes(16))
    return path


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` grey pixels; its data is one empty row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def wav_bytes(rate: int, frames: int, *, channels: int = 1, width: int = 2) -> bytes:
    """A PCM WAV whose header gives ``rate`` (any value, 0 included) over ``frames`` frames of
    a quiet ramp."""
    data = (np.arange(frames * channels) % 64).astype("<i2").tobytes()[: frames * channels * width]
    fmt = struct.pack(
        "<HHIIHH", 1, channels, rate, rate * channels * width, channels * width, 8 * width
    )
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body
