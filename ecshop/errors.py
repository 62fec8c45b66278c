"""One error tree for the whole shop.

Domain code raises a :class:`ShopError` subclass carrying data; one HTTP error handler
(``ecshop.resources.errors``) turns it into ``{"error": {"code", "message", ...}}`` with
``status``. Services know nothing of HTTP beyond this number.
"""

from __future__ import annotations

from typing import Any


class ShopError(Exception):
    """Base of every error ecshop raises on purpose."""

    code = "shop_error"
    status = 500
    retry_after: int | None = None

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.details)
        return body


class ConfigError(ShopError):
    """A setting is missing or malformed (raised at start-up)."""

    code = "config_error"


class BadRequest(ShopError):
    code = "bad_request"
    status = 400


class ValidationError(BadRequest):
    code = "validation_error"


class Unauthorized(ShopError):
    code = "unauthorized"
    status = 401


class Forbidden(ShopError):
    code = "forbidden"
    status = 403


class NotFound(ShopError):
    code = "not_found"
    status = 404


class Conflict(ShopError):
    code = "conflict"
    status = 409


class StaleStock(Conflict):
    """``set_on_hand`` was based on a value that has changed since."""

    code = "stale_on_hand"


class InsufficientStock(Conflict):
    """Not enough sellable units; ``items`` lists ``(sku, requested, available)``."""

    code = "out_of_stock"

    def __init__(self, items: list[tuple[str, int, int]], message: str | None = None) -> None:
        self.items = list(items)
        first = self.items[0] if self.items else ("", 0, 0)
        super().__init__(
            message
            or f"not enough stock for {first[0]}: requested {first[1]}, available {first[2]}",
            sku=first[0],
            available=first[2],
            items=[{"sku": s, "requested": r, "available": a} for s, r, a in self.items],
        )


class IllegalTransition(Conflict):
    code = "illegal_transition"


class IdempotencyMismatch(ShopError):
    code = "idempotency_key_reused"
    status = 422


class RequestTimeout(ShopError):
    """The client did not send its whole request body in time (``ECSHOP_BODY_TIMEOUT``)."""

    code = "request_timeout"
    status = 408


class PayloadTooLarge(ShopError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(ShopError):
    """The request body is not in the media type the endpoint takes (JSON endpoints)."""

    code = "unsupported_media_type"
    status = 415


class InternalError(ShopError):
    """Something inside the shop or a plugin went wrong; the client only sees a generic
    message with the request id, the log has the details."""

    code = "internal_error"


class Unavailable(ShopError):
    """The shop cannot serve this now (database busy, stock engine rebuilding, shedding)."""

    code = "unavailable"
    status = 503
    retry_after = 5

    def __init__(self, message: str, retry_after: int = 5, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class StockUnavailable(Unavailable):
    """The stock engine has no data (Redis restarted or flushed) until ``rebuild()``."""

    code = "stock_engine_unavailable"


class StoreError(ShopError):
    """The database failed in a way that is not the caller's fault."""

    code = "store_error"
    status = 503


class GatewayError(ShopError):
    """A payment gateway refused or could not be reached."""

    code = "gateway_error"
    status = 502


class SignatureError(BadRequest):
    """A gateway notification failed verification (signature, timestamp, amount)."""

    code = "invalid_notification"


class Overloaded(Unavailable):
    """The request waited too long in a queue before reaching the shop (load shedding)."""

    code = "overloaded"


class InMaintenance(Unavailable):
    """The shop is in maintenance mode (storefront only; payments stay open)."""

    code = "maintenance"


class RateLimited(ShopError):
    """One client asked too often (429, with ``Retry-After``)."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: int = 1, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after


class GatewayUnavailable(BadRequest):
    """The payment method named exists but cannot take payments (missing settings)."""

    code = "gateway_unavailable"
