"""Logging: the configured level, and every configured secret masked in every line, whoever writes it.

Our own code never logs a secret, but libraries at DEBUG do (botocore prints the headers it signs, a
session token among them). So each log handler's formatter is wrapped: the finished line, traceback
included, has every configured secret value replaced by ``***`` before it is written.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from gunicorn.glogging import Logger as GunicornLogger

from gateway.config import Config
from translator.redact import HIDDEN, is_secret

#: shorter values are not masked: masking a 2-letter "secret" would garble every line
MIN_SECRET_LENGTH = 4

_mask: re.Pattern[str] | None = None


def configured_secrets(config: Config) -> set[str]:
    """Every secret value in the config: users', Keystone's, Redis's password, backend credentials."""
    found = {u.secret for u in config.users}
    if config.keystone is not None:
        found.add(config.keystone.password)
    url = urlsplit(config.gateway.redis_url)
    found.update({url.password or ""} | {v for k, v in parse_qsl(url.query) if k.lower() == "password"})
    for account in config.accounts.values():
        found.update(_secret_options(account.options))
    return {s for s in found if len(s) >= MIN_SECRET_LENGTH}


def _secret_options(options: Mapping[str, Any]) -> Iterator[str]:
    for key, value in options.items():
        if isinstance(value, Mapping):
            yield from _secret_options(value)
        elif isinstance(value, str) and is_secret(str(key)):
            yield value


class MaskingFormatter(logging.Formatter):
    """Formats with the handler's own formatter, then masks the secrets in the result."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record)
        return _mask.sub(HIDDEN, line) if _mask is not None else line


def mask_handlers(handlers: Iterable[logging.Handler]) -> None:
    for handler in handlers:
        if not isinstance(handler.formatter, MaskingFormatter):
            handler.setFormatter(MaskingFormatter(handler.formatter))


def configure(config: Config) -> None:
    """Apply the config's log level to every logger and mask its secrets in every line from now on."""
    global _mask
    secrets = sorted(configured_secrets(config), key=len, reverse=True)  # longest first: no partial masks
    _mask = re.compile("|".join(map(re.escape, secrets))) if secrets else None
    root = logging.getLogger()
    root.setLevel(config.gateway.log_level.upper())
    mask_handlers(root.handlers)


class MaskingGunicornLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's logger (its error and access logs do not go through the root logger), masked too."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        mask_handlers([*self.error_log.handlers, *self.access_log.handlers])
