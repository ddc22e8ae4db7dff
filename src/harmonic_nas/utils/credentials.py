"""Database credentials are never written: not in the run directory, the report, logs or errors.

A storage URL may carry a password (``postgresql://user:password@host/db``); everything that
shows or stores a URL goes through :func:`redact`. The password can instead come from the
environment: libpq's own ``PGPASSWORD`` or ``~/.pgpass`` (nothing to configure), or the
variable named by ``search.storage_password_env`` (:func:`with_password`).
"""

from __future__ import annotations

import os
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from harmonic_nas.errors import HarmonicError

#: what replaces a password wherever a URL is shown or stored
MASK = "***"


def password_of(url: str) -> str | None:
    """The password of ``url`` (decoded), or None."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def redact(url: str) -> str:
    """The URL without its password (safe to print and to store in the run directory)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{netloc}"))


def scrub(text: str, url: str) -> str:
    """``text`` (an error message) with the password of ``url`` masked wherever it appears."""
    password = password_of(url)
    if not password:
        return text
    for form in {password, quote(password, safe="")}:
        text = text.replace(form, MASK)
    return text


def with_password(url: str, env: str | None) -> str:
    """``url`` with the password read from the environment variable ``env`` (the config's
    ``search.storage_password_env``) when it has none or a masked one (a saved copy's). Without
    ``env``, a masked password is dropped, so that libpq finds ``PGPASSWORD`` or ``~/.pgpass``.
    One-line :class:`HarmonicError` when the variable is not set."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password not in (None, MASK) or "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    if env is None:
        return (
            url if parts.password is None else urlunsplit(parts._replace(netloc=f"{user}@{host}"))
        )
    password = os.environ.get(env)
    if password is None:
        raise HarmonicError(
            f"search.storage_password_env names the environment variable {env}, which is not "
            f"set; export {env}=PASSWORD (or remove the key and use PGPASSWORD / ~/.pgpass)"
        )
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))
