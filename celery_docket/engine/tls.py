"""TLS options for Redis connections, in the forms Celery users already write.

Celery takes TLS settings as a dict (``broker_use_ssl``, ``redis_backend_use_ssl``) with the
keys ``ssl_cert_reqs``, ``ssl_ca_certs``, ``ssl_certfile`` and ``ssl_keyfile``, or as the same
names in a ``rediss://`` URL's query string, where ``ssl_cert_reqs`` is spelled
``CERT_REQUIRED`` (or ``required``). redis-py understands only its own lower-case spelling and
would fail on the first connection, long after the app started, so both forms are turned
into redis-py keyword arguments here, once, and bad names or values are refused at once.

A ``rediss://`` URL with no options verifies the server against the system's CAs: we never
fall back to unverified TLS without being told to (kombu does, with a warning).
"""

from __future__ import annotations

import inspect
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis

CERT_REQS = {
    "CERT_REQUIRED": ssl.CERT_REQUIRED,
    "CERT_OPTIONAL": ssl.CERT_OPTIONAL,
    "CERT_NONE": ssl.CERT_NONE,
    "required": ssl.CERT_REQUIRED,
    "optional": ssl.CERT_OPTIONAL,
    "none": ssl.CERT_NONE,
}

_SSL_KEYWORDS = frozenset(
    name
    for name in inspect.signature(redis.SSLConnection.__init__).parameters
    if name.startswith("ssl_")
)
"""Every ``ssl_*`` keyword this redis-py's SSLConnection takes."""


def cert_reqs(value: Any) -> ssl.VerifyMode:
    """``CERT_REQUIRED``/``required``/``ssl.CERT_REQUIRED`` (and friends) as ssl's constant."""
    if isinstance(value, ssl.VerifyMode):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return ssl.VerifyMode(value)
    if isinstance(value, str):
        name = value.strip()
        if name.startswith("ssl."):
            name = name[4:]
        if name in CERT_REQS:
            return CERT_REQS[name]
    raise ValueError(
        f"ssl_cert_reqs must be CERT_REQUIRED, CERT_OPTIONAL or CERT_NONE, not {value!r}"
    )


def ssl_kwargs(options: Mapping[str, Any] | bool | None) -> dict[str, Any] | None:
    """redis-py keyword arguments for a TLS connection, or None when TLS is not asked for.

    ``options`` is Celery's dict, ``True`` (TLS with verification) or None/False/``{}``.
    """
    if options is None or options is False:
        return None
    if options is True:
        return {}
    if not isinstance(options, Mapping):
        raise ValueError(f"TLS options must be a dict of ssl_* settings, not {options!r}")
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name not in _SSL_KEYWORDS:
            raise ValueError(
                f"unknown TLS option {name!r}: expected one of {', '.join(sorted(_SSL_KEYWORDS))}"
            )
        out[name] = value
    if "ssl_cert_reqs" in out:
        out["ssl_cert_reqs"] = cert_reqs(out["ssl_cert_reqs"])
        if out["ssl_cert_reqs"] == ssl.CERT_NONE:
            # ssl refuses CERT_NONE with hostname checking on; no verification means neither
            out.setdefault("ssl_check_hostname", False)
    return out


def split_url(url: str) -> tuple[str, dict[str, Any]]:
    """Take the ``ssl_*`` parameters out of ``url``'s query string.

    Returns the URL without them and their values as redis-py keyword arguments (not yet
    normalised: pass them through ``ssl_kwargs``). ``ssl_check_hostname`` becomes a bool.
    """
    parts = urlsplit(url)
    if not parts.query:
        return url, {}
    kept, found = [], {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name.startswith("ssl_"):
            found[name] = (
                value.lower() not in ("false", "0", "no")
                if name.endswith("check_hostname")
                else value
            )
        else:
            kept.append((name, value))
    if not found:
        return url, {}
    # not urlunsplit: it turns ``unix:///path`` into ``unix:/path``
    base = url.split("?", 1)[0]
    return (f"{base}?{urlencode(kept)}" if kept else base), found


def merged(url_options: Mapping[str, Any], setting: Mapping[str, Any] | bool | None) -> Any:
    """The URL's TLS parameters over the setting's (Celery lets the URL win)."""
    if not url_options:
        return setting
    base = dict(setting) if isinstance(setting, Mapping) else {}
    base.update(url_options)
    return base
