"""Every gateway shipped in ``plugins/`` passes the conformance kit.

The sandbox client runs against a real sandbox gateway process; the offline methods
(cash on delivery, bank transfer) get the checks that apply to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ecshop.config import load_config
from ecshop.plugins import load_plugins
from ecshop.testing.gateway import (
    GatewayConformance,
    GatewayHarness,
    OfflineGatewayConformance,
    sandbox_harness,
)

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def shipped(name: str, **settings: str) -> object:
    environ = {"ECSHOP_PLUGINS_DIR": str(PLUGINS), "ECSHOP_PLUGINS_STRICT": "1"}
    environ.update({f"ECSHOP_GATEWAY_{name.upper()}_{k.upper()}": v for k, v in settings.items()})
    return load_plugins(load_config(environ)).gateways[name]


class TestSandboxGateway(GatewayConformance):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[GatewayHarness]:
        yield from sandbox_harness(
            tmp_path,
            gateway_class=type(shipped("sandbox", url="http://127.0.0.1:9", secret="s" * 32)),
        )


class TestCashOnDelivery(OfflineGatewayConformance):
    @pytest.fixture
    def harness(self) -> GatewayHarness:
        return GatewayHarness(gateway=shipped("cod"))  # type: ignore[arg-type]


class TestBankTransfer(OfflineGatewayConformance):
    @pytest.fixture
    def harness(self) -> GatewayHarness:
        return GatewayHarness(gateway=shipped("bank_transfer", account="Example Bank 123-4567"))  # type: ignore[arg-type]
