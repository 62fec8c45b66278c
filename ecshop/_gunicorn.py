"""What ``ecshop/gunicorn.conf.py`` plugs into gunicorn: masked logs."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from ecshop.redact import install_filter


class MaskedLogger(Logger):
    """gunicorn's logger with passwords masked in the error and access logs."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            install_filter(logger)
