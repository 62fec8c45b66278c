"""The sandbox gateway's client as a plugin: test payments through ``ecshop sandbox-gateway``.

The gateway class lives in ``ecshop.payments.sandbox_client`` so that tools such as
``ecshop bench`` can load it without this folder. Settings:
ECSHOP_GATEWAY_SANDBOX_URL and ECSHOP_GATEWAY_SANDBOX_SECRET.
"""

from __future__ import annotations

from typing import Any

from ecshop.payments.sandbox_client import SandboxGateway

NAME = "sandbox"
VERSION = "1.0"


def register(host: Any) -> None:
    host.add_gateway(SandboxGateway)
