"""URLs with their secrets masked: user info and query values become `***`, in node outputs,
error messages and log lines (httpx logs every request's URL at INFO)."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# A URL inside free text: a scheme, `://`, then anything up to whitespace or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
# Loggers whose records name request URLs.
URL_LOGGERS = ("httpx", "httpcore")


def mask_url(url: str) -> str:
    """`url` with user info replaced by `***` and every query value by `***` (names stay; a
    part without `=`, as in `?APIKEY`, is a value)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _URL_IN_TEXT.sub(MASK, url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = "&".join(_mask_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment and MASK))


def _mask_pair(pair: str) -> str:
    name, sep, value = pair.partition("=")
    if not sep:
        return MASK if name else pair
    return f"{name}={MASK}" if value else pair


def mask_urls_in(text: str) -> str:
    """Every URL inside `text` masked."""
    return _URL_IN_TEXT.sub(lambda match: mask_url(match.group(0)), text)


class UrlMaskingFilter(logging.Filter):
    """Masks the URLs in a record's message and arguments before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_urls_in(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked_argument(arg) for arg in record.args)
        return True


def _masked_argument(argument: Any) -> Any:
    if isinstance(argument, str | bytes) or type(argument).__name__ == "URL":
        text = argument.decode(errors="replace") if isinstance(argument, bytes) else str(argument)
        return mask_urls_in(text) if "://" in text else argument
    return argument


def install_url_masking() -> None:
    """Mask URLs in every record of httpx's and httpcore's loggers (idempotent)."""
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, UrlMaskingFilter) for f in logger.filters):
            logger.addFilter(UrlMaskingFilter())
