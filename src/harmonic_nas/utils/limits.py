"""The limits on every size read from a user's file, checked before anything of that size is
allocated (one owner: readers import these names, the README's "Reliability" section lists them).

A file of a few kilobytes can claim any size in its header (an ``.npy`` shape, a PNG's width
and height, a WAV's sample rate, a ``preprocess.json`` clip length): the readers compare the
claim with these limits first and refuse it in one line, so that a bad or hostile file costs
neither memory nor time.
"""

from __future__ import annotations

#: Memory one array file may take once read: the arrays of one ``.npz`` together, or one ``.npy``,
#: each value counted at least as a float32 (4 GiB; AV-MNIST's largest file, 60,000 x 112 x 112
#: spectrograms, takes 3.0 GB as float32).
MAX_ARRAY_BYTES = 2**32

#: Pixels of one image file (width x height; 8192 x 8192). Pillow's own guard starts higher.
MAX_IMAGE_PIXELS = 2**26

#: Sample rates a WAV file or a ``preprocess.json`` recipe may give, in Hz (below 1 kHz no
#: recording holds speech or sound the mel features describe: such a rate is a broken header).
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000

#: Samples of the one clip an audio recipe takes from a file (2**24: 6 min at 44.1 kHz).
MAX_CLIP_SAMPLES = 2**24

#: STFT window of an audio recipe (``n_fft``), mel bands, frames and cepstral coefficients.
MAX_N_FFT = 2**14
MAX_MEL_BANDS = 512
MAX_FRAMES = 1024

#: The largest class index a label may hold (before the check against the number of rows).
MAX_LABEL = 2**31 - 1

#: A lookup table's per-layer latency (ms) and energy (mJ): a larger value is no layer's cost,
#: and sums of a few of them would overflow to infinity.
MAX_LAYER_COST = 1e9


def human_bytes(n: float) -> str:
    """``4.3 GB`` style (decimal units)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"
