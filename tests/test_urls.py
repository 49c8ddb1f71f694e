"""One URL redactor for banners, CLI errors and reports: no password ever printed."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from celery_docket.utils.urls import redact_url

SECRET = st.text(alphabet=string.ascii_letters + string.digits + "-_.~", min_size=6, max_size=20)


@given(SECRET)
def test_password_in_userinfo_or_query_never_printed(secret: str) -> None:
    for url in (
        f"redis://:{secret}@127.0.0.1:6379/0",
        f"redis://user:{secret}@host/1",
        f"rediss://host:6380/0?password={secret}&ssl_cert_reqs=required",
        f"sentinel://:{secret}@h1:26379;sentinel://:{secret}@h2:26379",
        f"redis://host/0?sentinel_password={secret}",
    ):
        shown = redact_url(url)
        assert secret not in shown, shown
        assert "**" in shown


def test_urls_without_secrets_are_unchanged() -> None:
    for url in ("memory://", "memory://x", "redis://127.0.0.1:6379/0", "redis://u@h/0?db=2"):
        assert redact_url(url) == url


def test_shape_is_kept_for_operators() -> None:
    assert redact_url("redis://:pw@h:6379/0") == "redis://:**@h:6379/0"
    assert redact_url("redis://u:pw@h/0") == "redis://u:**@h/0"
    assert redact_url("redis://h/0?password=pw&db=1") == "redis://h/0?password=**&db=1"
