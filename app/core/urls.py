"""Checking the external URLs an operator configures (PBX web UI, documents)."""

from urllib.parse import urlsplit

MAX_URL_LENGTH = 500


def http_url(value: str) -> str:
    """An absolute http(s) URL with a host and no credentials, or ValueError."""
    # isprintable() is False for control characters (CR/LF included) and for any space but " ".
    if len(value) > MAX_URL_LENGTH or not value.isprintable() or " " in value:
        raise ValueError("must be an http(s) URL of at most 500 characters without spaces")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError("must be an http(s) URL") from exc
    del port  # parsed only to reject a malformed port
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials")
    return value


def http_base_url(value: str) -> str:
    """A base URL that paths are appended to: http(s), no query or fragment, no trailing slash."""
    value = http_url(value.rstrip("/"))
    parts = urlsplit(value)
    if parts.query or parts.fragment:
        raise ValueError("must not contain a query or a fragment")
    return value
