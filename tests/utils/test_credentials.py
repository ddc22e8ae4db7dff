"""No credential is ever written (issue 25, red-team class 10): masking, scrubbing error text,
and the password from the environment."""

from __future__ import annotations

import pytest

from harmonic_nas.errors import HarmonicError
from harmonic_nas.utils.credentials import MASK, password_of, redact, scrub, with_password

URL = "postgresql://user:s3cr%40t@db.example:5432/studies"


def test_redact_masks_only_the_password() -> None:
    assert redact(URL) == f"postgresql://user:{MASK}@db.example:5432/studies"
    assert redact("postgresql://user@db/x") == "postgresql://user@db/x"
    assert redact("sqlite:////tmp/study.db") == "sqlite:////tmp/study.db"
    assert password_of(URL) == "s3cr@t" and password_of("sqlite:///x.db") is None


def test_scrub_removes_the_password_in_both_spellings() -> None:
    text = "could not parse 'postgresql://user:s3cr%40t@db' (password s3cr@t)"
    out = scrub(text, URL)
    assert "s3cr" not in out and out.count(MASK) == 2


def test_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HNAS_PW", "p@ss:word")
    plain = "postgresql://user@db:5432/x"
    assert with_password(plain, "HNAS_PW") == "postgresql://user:p%40ss%3Aword@db:5432/x"
    assert password_of(with_password(redact(URL), "HNAS_PW")) == "p@ss:word"  # a masked one
    assert with_password(URL, "HNAS_PW") == URL  # a password given in the URL is kept
    assert with_password(plain, None) == plain
    # a saved (masked) URL without a variable: libpq's PGPASSWORD / ~/.pgpass apply
    assert with_password(redact(URL), None) == "postgresql://user@db.example:5432/studies"
    monkeypatch.delenv("HNAS_PW")
    with pytest.raises(HarmonicError, match="names the environment variable HNAS_PW, which is not"):
        with_password(plain, "HNAS_PW")
