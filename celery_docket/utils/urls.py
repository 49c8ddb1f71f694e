"""One place that makes a broker or backend URL safe to print.

Passwords hide in two places in a Redis URL: ``redis://user:pw@host`` and a query parameter
(``?password=pw``, also ``sentinel_password``). Both are replaced by ``**``; the URL stays
otherwise as written, so an operator still recognises it. Several URLs joined by ``;``
(Celery's failover and Sentinel form) are redacted one by one.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ("redact_url",)

_SECRET_PARAMS = frozenset({"password", "sentinel_password", "passwd", "pass"})


def _redact_one(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        user, has_password, _ = creds.partition(":")
        netloc = f"{user}:**@{host}" if has_password else f"{user}@{host}"
        if not has_password and not parts.username:
            netloc = f"**@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            query = urlencode(
                [(k, "**" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*"
            )
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing secret: as written (urlunsplit would turn memory:// into memory:)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redact_url(url: str) -> str:
    """``url`` with every password replaced by ``**``."""
    return ";".join(_redact_one(part) for part in str(url).split(";"))
