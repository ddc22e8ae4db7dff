"""One rule for the names that become path parts (issue 25, red-team class 1)."""

from __future__ import annotations

import pytest

from harmonic_nas.errors import HarmonicError
from harmonic_nas.utils.names import MAX_NAME, check_name, name_problem


@pytest.mark.parametrize(
    "good", ["image", "audio_2", "jetson-tx2", "v1.2", "A", "0", "_x", "x" * MAX_NAME]
)
def test_plain_names_pass(good: str) -> None:
    assert name_problem(good) is None
    assert check_name(good, "modality name") == good


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("", "is empty"),
        (".", "is not a plain file name"),
        ("..", "is not a plain file name"),
        ("../../outside/evil", "is not a plain file name"),
        ("a/b", "is not a plain file name"),
        ("a\\b", "is not a plain file name"),
        ("/abs", "is not a plain file name"),
        (".hidden", "is not a plain file name"),
        ("-option", "is not a plain file name"),
        ("caf\u00e9", "is not a plain file name"),
        ("a b", "is not a plain file name"),
        ("nul\x00", "is not a plain file name"),
        ("new\nline", "is not a plain file name"),
        ("x" * (MAX_NAME + 1), f"is {MAX_NAME + 1} characters long"),
        (5, "must be a string, not int"),
    ],
)
def test_unsafe_names_are_refused_in_one_line(bad: object, problem: str) -> None:
    assert name_problem(bad) == problem
    with pytest.raises(HarmonicError) as info:
        check_name(bad, "device name")
    message = str(info.value)
    assert message.startswith("device name ") and problem in message
    assert "\n" not in message and len(message) < 300
