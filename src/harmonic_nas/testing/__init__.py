"""Test doubles for harmonic-nas: nothing in the package imports this by default.

:mod:`harmonic_nas.testing.synthetic_problem` is a closed-form search problem with fault injection
(failures, NaNs, sleeps); select it explicitly, as a factory passed to
:func:`harmonic_nas.search.run_search` or, from the command line, with
``HARMONIC_NAS_SEARCH_PROBLEM=harmonic_nas.testing.synthetic_problem:from_env``.
"""

from __future__ import annotations
