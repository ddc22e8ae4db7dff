"""In-process speech synthesis with eSpeak NG (the library shipped by ``espeakng-loader``).

The library is driven through ctypes in synchronous mode: ``espeak_Initialize`` with the package's
data path, a synth callback that collects int16 samples (22,050 Hz), ``espeak_SetVoiceByName`` with
``<accent>+<variant>`` names such as ``en-us+f2``, and ``espeak_SetParameter`` for rate and pitch.
Each :class:`EspeakSession` is a private copy of the library, so builds are deterministic.
"""

from __future__ import annotations

import _ctypes
import contextlib
import ctypes
import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harmonic_nas.errors import DataError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 22050

# espeak_AUDIO_OUTPUT / espeak_PARAMETER / flags, from speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_PARAM_WORDGAP = 7
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EE_OK = 0

#: English accents shipped with eSpeak NG (``lang/gmw/en*``), usable as voice names.
ACCENTS: tuple[str, ...] = (
    "en-us",
    "en",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)

_LOCK = threading.Lock()  # eSpeak NG is not re-entrant

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


@dataclass(frozen=True)
class Voice:
    """A synthetic speaker: accent, voice variant, speaking rate (words/min), pitch and range (0-100)."""

    accent: str
    variant: str
    rate: int = 175
    pitch: int = 50
    range: int = 50

    @property
    def voice_name(self) -> str:
        return f"{self.accent}+{self.variant}" if self.variant else self.accent

    @property
    def id(self) -> str:
        return f"{self.voice_name}/r{self.rate}/p{self.pitch}/g{self.range}"


def _package_paths() -> tuple[Path, Path]:
    try:
        import espeakng_loader
    except ImportError:  # pragma: no cover - a declared dependency
        raise DataError(
            "the av-digits dataset needs the package espeakng-loader; "
            "install it with `pip install espeakng-loader`"
        ) from None
    return Path(espeakng_loader.get_library_path()), Path(espeakng_loader.get_data_path())


class EspeakSession:
    """A private, freshly initialised eSpeak NG instance.

    eSpeak NG keeps state between utterances in C statics (pitch flutter index, wave phase, its
    random generator), so the same text and voice do not give the same samples twice in one
    process. A session loads its own copy of the shared library (copied to a temporary file,
    hence fresh statics), seeds its generator and unloads it on :meth:`close`: the same sequence
    of calls in a new session gives bit-identical audio. Use it as a context manager.
    """

    def __init__(self, seed: int = 0) -> None:
        lib_path, data_path = _package_paths()
        self._closed = False
        self.lib: ctypes.CDLL | None = None
        self._tmpdir = Path(tempfile.mkdtemp(prefix="harmonic-nas-espeak-"))
        private = self._tmpdir / lib_path.name
        try:
            shutil.copyfile(lib_path, private)
            lib = ctypes.CDLL(str(private))
        except OSError as exc:
            self.close()
            raise DataError(
                f"cannot load eSpeak NG from {lib_path} ({exc}); reinstall espeakng-loader"
            ) from None
        self.lib = lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        lib.espeak_Terminate.argtypes = []
        lib.espeak_Terminate.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        # the data path may be the espeak-ng-data directory itself or its parent
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path).encode(), 0)
        if rate <= 0:
            self.close()
            raise DataError(
                f"eSpeak NG failed to initialise with data at {data_path}; reinstall espeakng-loader"
            )
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []

        def collect(wav: Any, n: int, events: Any) -> int:
            if n > 0 and wav:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _SYNTH_CALLBACK(collect)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)

    def synth(self, text: str, voice: Voice) -> np.ndarray:
        """int16 samples of ``text`` spoken by ``voice`` (at :attr:`sample_rate`)."""
        if self._closed or self.lib is None:
            raise RuntimeError("this EspeakSession is closed")
        with _LOCK:
            if self.lib.espeak_SetVoiceByName(voice.voice_name.encode()) != _EE_OK:
                raise DataError(
                    f"eSpeak NG has no voice '{voice.voice_name}'; use one of the accents "
                    f"{', '.join(ACCENTS)} and a variant from list_variants()"
                )
            for param, value in (
                (_PARAM_RATE, voice.rate),
                (_PARAM_PITCH, voice.pitch),
                (_PARAM_RANGE, voice.range),
                (_PARAM_VOLUME, 100),
                (_PARAM_WORDGAP, 0),
            ):
                self.lib.espeak_SetParameter(param, int(value), 0)
            self._chunks = []
            buf = text.encode("utf-8") + b"\0"
            status = self.lib.espeak_Synth(
                buf, len(buf), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            chunks, self._chunks = self._chunks, []
        if status != _EE_OK:
            raise DataError(
                f"eSpeak NG failed to speak {text!r} (status {status}); reinstall espeakng-loader"
            )
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(chunks).astype(np.int16, copy=False)

    def close(self) -> None:
        """Terminate eSpeak NG, unload this private copy and delete it."""
        if self._closed:
            return
        self._closed = True
        lib, self.lib = self.lib, None
        if lib is not None:
            with contextlib.suppress(Exception):
                lib.espeak_Terminate()
            with contextlib.suppress(Exception):
                _ctypes.dlclose(lib._handle)
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def __enter__(self) -> EspeakSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def synthesize(text: str, voice: Voice, *, seed: int = 0) -> np.ndarray:
    """Speak ``text`` with ``voice`` in a fresh session; int16 samples at 22,050 Hz (deterministic)."""
    with EspeakSession(seed) as session:
        return session.synth(text, voice)


def list_variants() -> list[str]:
    """Names of the voice variants shipped with eSpeak NG (``voices/!v``), sorted."""
    _, data_path = _package_paths()
    vdir = data_path / "voices" / "!v"
    return sorted(p.name for p in vdir.iterdir() if p.is_file())
