"""``python -m harmonic_nas``: the CLI, also as torchrun's module
(``torchrun --nproc-per-node N -m harmonic_nas pretrain CONFIG``)."""

from __future__ import annotations

from harmonic_nas.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
