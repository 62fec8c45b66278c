"""AcmePay against the ecshop gateway conformance kit, with a real sandbox gateway."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from acmepay_ecshop import AcmePayGateway

from ecshop.testing.gateway import GatewayConformance, GatewayHarness, sandbox_harness


class TestAcmePay(GatewayConformance):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[GatewayHarness]:
        yield from sandbox_harness(tmp_path, gateway_class=AcmePayGateway)
