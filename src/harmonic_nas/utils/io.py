"""Atomic writes and versioned JSON: nothing half-written is ever left behind."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harmonic_nas.errors import HarmonicError


class WriteError(HarmonicError):
    """A file could not be written (read-only filesystem, disk full, no permission, ...)."""


_WRITE_FIXES = {
    errno.ENOSPC: "free disk space",
    errno.EDQUOT: "free disk space (quota exceeded)",
    errno.EROFS: "the filesystem is read-only: use a writable location",
    errno.EACCES: "check the permissions of the directory",
    errno.EPERM: "check the permissions of the directory",
    errno.ENOTDIR: "a parent of it is a file, not a directory: move that file away",
    errno.EEXIST: "a parent of it is a file, not a directory: move that file away",
    errno.EISDIR: "it is a directory: move it away",
    errno.ENAMETOOLONG: "use a shorter name (a file system allows 255 bytes per path part)",
}


def os_error(exc: OSError) -> HarmonicError:
    """Any :class:`OSError` as one line: the path (when the OS names one), what the OS said, and
    the fix; the CLI's last resort for a file operation no reader or writer wrapped."""
    reason = exc.strerror or " ".join(str(exc).split()) or exc.__class__.__name__
    fix = _WRITE_FIXES.get(exc.errno or 0, "check the path and its permissions")
    where = f" {exc.filename}" if exc.filename is not None else ""
    return HarmonicError(f"cannot access{where}: {reason}; {fix}, then rerun the same command")


def write_error(path: Path | str, exc: OSError) -> WriteError:
    """A one-line :class:`WriteError` naming ``path``, what the OS said, and the fix."""
    reason = exc.strerror or exc.__class__.__name__
    fix = _WRITE_FIXES.get(exc.errno or 0, "check that the location exists and is writable")
    return WriteError(f"cannot write {path}: {reason}; {fix}, then rerun the same command")


@contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """Turn any :class:`OSError` raised inside the block into a one-line :class:`WriteError`
    naming ``path`` (for writers that do not go through the atomic helpers below)."""
    try:
        yield
    except OSError as exc:
        raise write_error(path, exc) from None


def ensure_dir(path: Path | str) -> Path:
    """Create ``path`` (and its parents) as a directory; one-line :class:`WriteError` if it is a
    file, or cannot be created or written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise WriteError(
            f"cannot write into {path}: it is a file, not a directory; move it away or "
            "choose another location"
        )
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)
    return path


def check_writable_dir(path: Path | str) -> Path:
    """Create ``path`` if needed and prove it writable (a probe file, removed at once), so that a
    read-only or full location is refused before any work is done."""
    path = ensure_dir(path)
    with writing(path):
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=path)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(probe)
    return path


def current_umask() -> int:
    """This process's umask, read without changing it where the OS tells (``/proc``); else set
    and restored at once."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Write through a temporary file in the same directory and a rename: the target is either
    its old content or the complete new one; the temporary file never survives a failure. The
    file gets the permissions a plain ``open(path, "w")`` would (0666 less the umask), not the
    temporary file's 0600: others on a shared machine read a run as they read any file."""
    path = Path(path)
    ensure_dir(path.parent)
    tmp: Path | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(tmp_name)
        try:
            os.fchmod(fd, 0o666 & ~current_umask())
        finally:
            os.close(fd)
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return _atomic(path, write)


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any, *, schema_version: int | None = None) -> Path:
    """Write ``obj`` as indented JSON; if ``schema_version`` is given it is stored in the object."""
    if schema_version is not None:
        obj = {"schema_version": schema_version, **obj}
    return atomic_write_text(
        path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    )


def atomic_torch_save(path: Path, obj: Any) -> Path:
    """``torch.save`` atomically. Only save tensors and plain containers (weights_only loadable)."""
    import torch  # here, not at module level: the CLI starts without torch

    def write(tmp: Path) -> None:
        try:
            torch.save(obj, tmp)
        except RuntimeError as exc:  # torch's file writer reports a full disk as RuntimeError
            raise OSError(
                errno.EIO, f"torch.save failed ({' '.join(str(exc).split())[:120]})"
            ) from None

    return _atomic(path, write)


def is_schema_version(found: Any, expected: int) -> bool:
    """Whether ``found`` (a file's ``schema_version``) is exactly the integer ``expected``;
    ``true`` (which Python compares equal to 1) and ``1.0`` are not versions."""
    return type(found) is int and found == expected


def read_json(path: Path, *, schema_version: int | None = None, what: str = "file") -> Any:
    """Read JSON, with one-line errors for a missing/corrupt file or a wrong schema version."""
    path = Path(path)
    if not path.is_file():
        raise HarmonicError(f"{what} not found: {path}")
    try:
        obj = load_json(path.read_text(encoding="utf-8"))
    except DuplicateKeyError as exc:
        raise HarmonicError(f"{what} {path} has a {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HarmonicError(
            f"{what} {path} is not valid JSON ({exc.__class__.__name__}: line {getattr(exc, 'lineno', '?')}); "
            "regenerate it or restore a good copy"
        ) from None
    except OSError as exc:
        raise HarmonicError(
            f"cannot read {what} {path}: {exc.strerror or exc.__class__.__name__}; "
            "check that it is readable"
        ) from None
    if schema_version is not None:
        found = obj.get("schema_version") if isinstance(obj, dict) else None
        if not is_schema_version(found, schema_version):
            raise HarmonicError(
                f"{what} {path} has schema_version {found!r}, expected {schema_version}; "
                "regenerate it with this version of harmonic-nas"
            )
    return obj


def safe_torch_load(path: Path, *, what: str = "checkpoint") -> Any:
    """Load a torch file with ``weights_only=True``; corrupt files give a one-line error."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise HarmonicError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, truncated file, pickle with disallowed globals
        raise HarmonicError(
            f"{what} {path} is corrupt or unsafe to load ({exc.__class__.__name__}); "
            "delete it and rerun the stage (or pass --force)"
        ) from None


class DuplicateKeyError(HarmonicError):
    """A YAML or JSON mapping gives one key twice (which parsers otherwise resolve silently, the
    last one winning). The message names the key and the lines; callers prefix the file."""

    def __init__(self, key: str, lines: Sequence[int]) -> None:
        self.key = key
        self.lines = tuple(lines)
        where = " and ".join(str(n) for n in self.lines[:2]) if self.lines else "?"
        super().__init__(
            f"duplicate key {key!r} (lines {where}); keep one of them (a later key would "
            "silently replace the earlier one)"
        )


def _yaml_loader() -> type:
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        """PyYAML's safe loader with YAML 1.2 floats: ``1e-3`` is the float 0.001 (YAML 1.1,
        hence PyYAML, reads a float without a dot as the string '1e-3'); a key given twice in
        one mapping is a :class:`DuplicateKeyError` naming both lines."""

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, int] = {}
                for key_node, _value in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        hash(key)
                    except TypeError:
                        continue  # an unhashable key: the base loader reports it
                    line = key_node.start_mark.line + 1
                    if key in seen:
                        raise DuplicateKeyError(str(key), (seen[key], line))
                    seen[key] = line
            return super().construct_mapping(node, deep=deep)

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return Loader


_YAML_LOADER: type | None = None


def load_yaml(text: str) -> Any:
    """Parse YAML safely (no objects), reading ``1e-3`` as a float as YAML 1.2 does; a quoted
    ``"1e-3"`` stays a string. Raises :class:`yaml.YAMLError` on bad syntax and
    :class:`DuplicateKeyError` on a key given twice in one mapping."""
    import yaml

    global _YAML_LOADER
    if _YAML_LOADER is None:
        _YAML_LOADER = _yaml_loader()
    return yaml.load(text, Loader=_YAML_LOADER)  # a SafeLoader subclass: never objects


def _json_duplicate_lines(text: str) -> tuple[int, ...]:
    """The lines of the first key given twice in one object of the JSON ``text`` (a scan that
    follows the nesting, so the same key in two objects is no duplicate); empty if none."""
    stack: list[dict[str, int] | None] = []  # per open container: an object's keys, or None
    expect_key = False
    line, i, n = 1, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
        elif ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if expect_key and stack and stack[-1] is not None:
                key = json.loads(text[i : j + 1])
                if key in stack[-1]:
                    return (stack[-1][key], line)
                stack[-1][key] = line
            line += text.count("\n", i, j)
            i = j
            expect_key = False
        elif ch == "{":
            stack.append({})
            expect_key = True
        elif ch == "[":
            stack.append(None)
        elif ch in "}]":
            if stack:
                stack.pop()
        elif ch == ",":
            expect_key = bool(stack) and stack[-1] is not None
        i += 1
    return ()


def load_json(text: str) -> Any:
    """``json.loads`` that refuses an object giving one key twice (:class:`DuplicateKeyError`
    naming the key and its lines); raises :class:`json.JSONDecodeError` on bad syntax. Every
    JSON mapping a user hands harmonic-nas (LUTs, architectures, preprocessing) goes through it."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise DuplicateKeyError(key, _json_duplicate_lines(text))
            out[key] = value
        return out

    return json.loads(text, object_pairs_hook=pairs)


def read_npz(path: Path, *, fix: str) -> dict[str, Any]:
    """The arrays of an ``.npz`` archive (never pickles), with one-line :class:`DataError`s for a
    lone ``.npy`` array, an unreadable file, or arrays whose headers claim more memory than
    :data:`~harmonic_nas.utils.limits.MAX_ARRAY_BYTES` (checked before any is read);
    ``fix`` says how to write a good one."""
    import zipfile

    import numpy as np

    from harmonic_nas.errors import DataError

    try:
        check_npz_size(path)
        loaded = np.load(path, mmap_mode="r", allow_pickle=False)  # (a lone .npy is not read)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a lone .npy array
            raise DataError(f"{path} holds a single .npy array, not an .npz archive; {fix}")
        with loaded as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
    except ValueError as exc:
        if "Object arrays" in str(exc):  # an object array: numpy refuses it without pickles
            raise DataError(
                f"{path} holds an object (pickled) array, which is never loaded; {fix}"
            ) from None
        raise DataError(f"cannot read {path} as .npz ({exc.__class__.__name__}); {fix}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path} as .npz ({exc.__class__.__name__}); {fix}") from None
    for name, arr in arrays.items():
        check_npz_dtype(arr, f"{path} array '{name}'", fix)
    return arrays


#: numpy dtype kinds an ``.npz`` may hold: bool, integers, floats, strings (class names).
NPZ_KINDS = "biufUS"


def check_npz_dtype(arr: Any, what: str, fix: str) -> None:
    """One-line :class:`DataError` unless ``arr`` has a real numeric, bool or string dtype
    (complex values would lose their imaginary part, objects and records are not data)."""
    from harmonic_nas.errors import DataError

    kind = arr.dtype.kind
    if kind in NPZ_KINDS:
        return
    names = {
        "c": "complex",
        "O": "object",
        "V": "structured/void",
        "M": "datetime",
        "m": "timedelta",
    }
    raise DataError(
        f"{what} has {names.get(kind, 'unsupported')} dtype {arr.dtype} (only real numbers, "
        f"bools or strings are read); {fix}"
    )


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], Any]]:
    """``{array name: (shape, dtype)}`` of an ``.npz`` from its ``.npy`` headers only (no data is
    read or decompressed beyond the headers). Raises ``OSError``, ``ValueError`` or
    ``zipfile.BadZipFile`` for a file that is not such an archive."""
    import zipfile

    import numpy as np

    out: dict[str, tuple[tuple[int, ...], Any]] = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            out[info.filename[: -len(".npy")]] = (tuple(int(s) for s in shape), dtype)
    return out


def array_bytes(shape: Any, dtype: Any) -> int:
    """Bytes an array of ``shape`` and ``dtype`` takes in memory once read, each value counted at
    least as a float32 (what the data becomes for training and inference)."""
    import math

    import numpy as np

    return math.prod(int(s) for s in shape) * max(np.dtype(dtype).itemsize, 4)


def check_array_size(shape: Any, dtype: Any, what: str, fix: str) -> None:
    """One-line :class:`DataError` when an array of ``shape`` and ``dtype`` (as a file's header
    claims it) would take more than :data:`~harmonic_nas.utils.limits.MAX_ARRAY_BYTES`."""
    check_bytes(array_bytes(shape, dtype), f"{what} (shape {list(shape)})", fix)


def check_bytes(n: int, what: str, fix: str) -> None:
    """One-line :class:`DataError` when ``what`` needs more than
    :data:`~harmonic_nas.utils.limits.MAX_ARRAY_BYTES` bytes of memory."""
    from harmonic_nas.errors import DataError
    from harmonic_nas.utils.limits import MAX_ARRAY_BYTES, human_bytes

    if n > MAX_ARRAY_BYTES:
        raise DataError(
            f"{what} would take {human_bytes(n)} of memory, more than the limit of "
            f"{human_bytes(MAX_ARRAY_BYTES)} per file; {fix}"
        )


#: The fix of a file over the size limit.
SIZE_FIX = "keep fewer samples or smaller arrays (float32) in one file, or check its header"


def check_npz_size(path: Path, fix: str = SIZE_FIX) -> int:
    """Bytes the arrays of the ``.npz`` at ``path`` take once read, from their headers only;
    one-line :class:`DataError` above :data:`~harmonic_nas.utils.limits.MAX_ARRAY_BYTES` (a
    compressed archive of a few kilobytes can expand to gigabytes). A file that is no zip
    archive passes (``numpy.load`` then says what it is)."""
    import zipfile

    try:
        headers = npz_headers(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return 0
    total = sum(array_bytes(shape, dtype) for shape, dtype in headers.values())
    check_bytes(total, f"{path} ({len(headers)} arrays)", fix)
    return total


def check_float32_range(arr: Any, what: str) -> None:
    """One-line :class:`DataError` when finite values of a wider float array lie beyond float32's
    range (they would become infinite once converted, and be reported as NaN/Inf)."""
    import numpy as np

    from harmonic_nas.errors import DataError

    if not (np.issubdtype(arr.dtype, np.floating) and arr.dtype.itemsize > 4 and arr.size):
        return
    if not np.isfinite(arr).all():
        return  # the NaN/Inf check names those
    hi = max(abs(float(np.max(arr))), abs(float(np.min(arr))))
    top = float(np.finfo(np.float32).max)
    if hi > top:
        raise DataError(
            f"{what} holds finite values up to {hi:.3g} in magnitude, beyond float32's range "
            f"(magnitude {top:.3g}) in which models compute; rescale the values"
        )
