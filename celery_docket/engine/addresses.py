"""``host:port`` out of a URL's address list, one rule for Sentinel and Cluster URLs."""

from __future__ import annotations


def host_port(address: str, url: str, what: str, default_port: int) -> tuple[str, int]:
    """``host[:port]`` (IPv6 in brackets) as ``(host, port)``; ``what`` names it in errors."""
    host, sep, port = address.rpartition(":")
    if not sep:
        host, port = address, ""
    host = host.strip("[]")
    if not host:
        raise ValueError(f"{what} without a host in {url!r}")
    try:
        return host, int(port or default_port)
    except ValueError:
        raise ValueError(f"bad {what} port {port!r} in {url!r}") from None


__all__ = ["host_port"]
