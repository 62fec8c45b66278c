"""FormPay against the ecshop gateway conformance kit, with a fake FormPay process."""

from collections.abc import Iterator

import fake_formpay
import pytest
from formpay_ecshop import FormPayGateway

from ecshop.testing.gateway import GatewayConformance, GatewayHarness


class TestFormPay(GatewayConformance):
    @pytest.fixture
    def harness(self) -> Iterator[GatewayHarness]:
        yield from fake_formpay.harness(FormPayGateway)
