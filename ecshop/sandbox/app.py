"""HTTP face of the sandbox gateway: the hosted pay page and the JSON API (Falcon, WSGI).

``/pay`` is authenticated by the link's signature; every ``/v1`` endpoint by
``Authorization: Bearer <secret>``. Errors are ``{"error": {"code", "message", ...}}``
with a 4xx status (an HTML page instead on ``/pay`` when a browser asks for HTML).
"""

from __future__ import annotations

import hmac
import html
import json
import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import falcon

from ecshop.errors import BadRequest, PayloadTooLarge, ShopError, Unauthorized
from ecshop.errors import ValidationError as Invalid
from ecshop.money import format_money
from ecshop.sandbox.delivery import Deliverer, FaultDice
from ecshop.sandbox.protocol import PAY_FIELDS, verify_query
from ecshop.sandbox.schema import CAPTURED, EXPIRED, STATUSES, SessionExpired
from ecshop.sandbox.state import SandboxState

log = logging.getLogger("ecshop.sandbox_gateway")

MAX_BODY = 64 * 1024
MAX_LIMIT = 100_000
DEFAULT_LIMIT = 100
MAX_AMOUNT = 10**15
_CURRENCY = re.compile(r"[A-Z]{3}")


class InvalidSignature(BadRequest):
    code = "invalid_signature"


def _template(name: str) -> Template:
    text = resources.files("ecshop.sandbox").joinpath("templates", name).read_text("utf-8")
    return Template(text)


# -- input ------------------------------------------------------------------------------
def _single_fields(pairs: list[tuple[str, str]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise Invalid(f"field {key!r} appears more than once", field=key)
        fields[key] = value
    return fields


def _http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid(f"{name} must be an http(s) URL", field=name)
    return value


def parse_link(fields: Mapping[str, str], secret: str, merchant: str | None) -> dict[str, Any]:
    """Check a pay link's fields (all but ``action``): present, signed, well formed.

    Raises:
        ValidationError: a field is missing or malformed.
        InvalidSignature: ``sig`` does not sign exactly these fields.
    """
    signed = {k: v for k, v in fields.items() if k != "action"}
    for name in (*PAY_FIELDS, "sig"):
        if not signed.get(name):
            raise Invalid(f"the pay link has no {name}", field=name)
    if not verify_query(signed, secret):
        raise InvalidSignature(
            "the pay link's signature does not match its fields: it was altered or signed "
            "with another secret"
        )
    amount = signed["amount"]
    if not (amount.isascii() and amount.isdigit()) or int(amount) >= MAX_AMOUNT:
        raise Invalid("amount must be a non-negative integer in minor units", field="amount")
    if not _CURRENCY.fullmatch(signed["currency"]):
        raise Invalid("currency must be a three-letter ISO code such as JPY", field="currency")
    if len(signed["order"]) > 100 or not signed["order"].isprintable():
        raise Invalid("order must be printable and at most 100 characters", field="order")
    if merchant is not None and signed["merchant"] != merchant:
        raise Invalid(f"this gateway serves merchant {merchant!r} only", field="merchant")
    return {
        **signed,
        "amount": int(amount),
        "notify_url": _http_url(signed["notify_url"], "notify_url"),
        "return_url": _http_url(signed["return_url"], "return_url"),
    }


def _read_body(req: falcon.Request) -> bytes:
    length = req.content_length or 0
    if length > MAX_BODY:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY} bytes")
    data: bytes = req.bounded_stream.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY} bytes")
    return data


def _page_params(req: falcon.Request) -> tuple[int, int]:
    limit_raw = req.get_param("limit") or str(DEFAULT_LIMIT)
    after_raw = req.get_param("after") or "0"
    if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= MAX_LIMIT:
        raise Invalid(f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
    if not after_raw.isdigit():
        raise Invalid("after must be a cursor from next_after", field="after")
    return int(limit_raw), int(after_raw)


def _page(items: list[dict[str, Any]], cursor: int | None) -> dict[str, Any]:
    return {"items": items, "next_after": None if cursor is None else str(cursor)}


class _Auth:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode("utf-8")

    def check(self, req: falcon.Request) -> None:
        scheme, _, token = (req.get_header("Authorization") or "").partition(" ")
        given = token.strip().encode("utf-8")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self._secret):
            raise Unauthorized("send Authorization: Bearer <the gateway secret>")


# -- resources -------------------------------------------------------------------------
class PayResource:
    """The hosted payment page: ``GET`` shows it, ``POST`` settles and redirects."""

    def __init__(
        self,
        state: SandboxState,
        deliverer: Deliverer,
        dice: FaultDice,
        secret: str,
        merchant: str | None,
    ) -> None:
        self.state = state
        self.deliverer = deliverer
        self.dice = dice
        self.secret = secret
        self.merchant = merchant
        self.page = _template("sandbox_pay.html")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        fields = _single_fields(parse_qsl(req.query_string, keep_blank_values=True))
        link = parse_link(fields, self.secret, self.merchant)
        payment = self.state.open_link(link)
        if payment["status"] == EXPIRED:
            raise SessionExpired(
                f"the payment session of order {link['order']} has expired; "
                "go back to the shop to order again",
                order=link["order"],
            )
        resp.content_type = falcon.MEDIA_HTML
        resp.set_header("Cache-Control", "no-store")
        resp.set_header("X-Frame-Options", "DENY")
        resp.set_header("Referrer-Policy", "no-referrer")
        resp.text = self._render(req, fields, link, payment)

    def _render(
        self,
        req: falcon.Request,
        fields: Mapping[str, str],
        link: Mapping[str, Any],
        payment: Mapping[str, Any],
    ) -> str:
        esc = html.escape
        hidden = "\n    ".join(
            f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in fields.items()
        )
        if payment["status"] in CAPTURED:
            notice = '<p class="notice">This order is already paid.</p>'
            buttons = f'<a href="{esc(link["return_url"])}">Back to the shop</a>'
        else:
            notice = ""
            buttons = (
                '<button class="pay" type="submit" name="action" value="pay">Pay</button>'
                '<button type="submit" name="action" value="decline">Decline</button>'
            )
        return self.page.substitute(
            order=esc(link["order"]),
            merchant=esc(link["merchant"]),
            amount=esc(format_money(link["amount"], link["currency"])),
            status=esc(payment["status"]),
            notice=notice,
            action=esc(req.path),
            hidden=hidden,
            buttons=buttons,
        )

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            text = _read_body(req).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Invalid("the form is not valid UTF-8") from exc
        fields = _single_fields(parse_qsl(text, keep_blank_values=True))
        action = fields.get("action", "")
        if action not in ("pay", "decline"):
            raise Invalid("action must be pay or decline", field="action")
        link = parse_link(fields, self.secret, self.merchant)
        _, event_id = self.state.settle(link, action, self.dice.fate)
        if event_id is not None:
            self.deliverer.wake()
        resp.status = falcon.HTTP_303
        resp.location = _return_location(link["return_url"], link["order"])
        resp.content_type = falcon.MEDIA_HTML
        resp.set_header("Cache-Control", "no-store")
        resp.text = f'<p><a href="{html.escape(resp.location)}">Back to the shop</a></p>'


def _return_location(return_url: str, order: str) -> str:
    parts = urlsplit(return_url)
    if any(k == "order" for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
        return return_url
    query = (parts.query + "&" if parts.query else "") + urlencode({"order": order})
    return parts._replace(query=query).geturl()


class PaymentResource:
    """``GET /v1/payments/{order}``: one payment's status (``unknown`` if never seen)."""

    def __init__(self, state: SandboxState, auth: _Auth) -> None:
        self.state = state
        self.auth = auth

    def on_get(self, req: falcon.Request, resp: falcon.Response, order: str) -> None:
        self.auth.check(req)
        resp.media = self.state.payment(order)


class ExpireResource:
    """``POST /v1/payments/{order}/expire``: end the session; answers the final status."""

    def __init__(self, state: SandboxState, auth: _Auth) -> None:
        self.state = state
        self.auth = auth

    def on_post(self, req: falcon.Request, resp: falcon.Response, order: str) -> None:
        self.auth.check(req)
        resp.media = self.state.expire(order)


class PaymentsResource:
    """``GET /v1/payments?status=&limit=&after=``: payments in the order first seen."""

    def __init__(self, state: SandboxState, auth: _Auth) -> None:
        self.state = state
        self.auth = auth

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.auth.check(req)
        raw = req.get_param("status") or ""
        statuses = [s for s in (part.strip() for part in raw.split(",")) if s]
        for status in statuses:
            if status not in STATUSES:
                raise Invalid(
                    f"status must be one of {', '.join(sorted(STATUSES))}", field="status"
                )
        limit, after = _page_params(req)
        resp.media = _page(*self.state.payments(statuses, limit, after))


class RefundsResource:
    """``POST /v1/refunds`` ``{"order", "amount"}``: a full or partial refund."""

    def __init__(
        self, state: SandboxState, deliverer: Deliverer, dice: FaultDice, auth: _Auth
    ) -> None:
        self.state = state
        self.deliverer = deliverer
        self.dice = dice
        self.auth = auth

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.auth.check(req)
        body = _json_object(_read_body(req))
        order, amount = body.get("order"), body.get("amount")
        if not isinstance(order, str) or not order:
            raise Invalid("order must be a non-empty string", field="order")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise Invalid("amount must be a positive integer in minor units", field="amount")
        key = req.get_header("Idempotency-Key")
        record, event_id = self.state.refund(order, amount, self.dice.fate, key)
        if event_id is not None:
            self.deliverer.wake()
        resp.status = falcon.HTTP_201 if event_id is not None else falcon.HTTP_200
        resp.media = record


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


class DeliveriesResource:
    """``GET /v1/deliveries?order=&event=&limit=&after=``: every notification attempt."""

    def __init__(self, state: SandboxState, auth: _Auth) -> None:
        self.state = state
        self.auth = auth

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.auth.check(req)
        limit, after = _page_params(req)
        page = self.state.deliveries(
            order=req.get_param("order"), event_id=req.get_param("event"), limit=limit, after=after
        )
        resp.media = _page(*page)


class EventsResource:
    """``GET /v1/events?order=&limit=&after=``: every notification raised, as sent."""

    def __init__(self, state: SandboxState, auth: _Auth) -> None:
        self.state = state
        self.auth = auth

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.auth.check(req)
        limit, after = _page_params(req)
        resp.media = _page(
            *self.state.events(order=req.get_param("order"), limit=limit, after=after)
        )


class HealthResource:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok", "pending_deliveries": self.state.pending_count()}


# -- errors ----------------------------------------------------------------------------
def _snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "error"


def _send_error(
    req: falcon.Request, resp: falcon.Response, status: int, body: dict[str, Any]
) -> None:
    resp.status = status
    wants_html = req.path == "/pay" and (
        req.client_prefers([falcon.MEDIA_JSON, falcon.MEDIA_HTML]) == falcon.MEDIA_HTML
    )
    if wants_html:
        resp.content_type = falcon.MEDIA_HTML
        resp.text = _template("sandbox_error.html").substitute(
            title="This payment link cannot be used" if status < 500 else "Something went wrong",
            message=html.escape(str(body.get("message", ""))),
            code=html.escape(str(body.get("code", ""))),
        )
    else:
        resp.content_type = falcon.MEDIA_JSON
        resp.media = {"error": body}


def _shop_error(req: falcon.Request, resp: falcon.Response, ex: ShopError, params: Any) -> None:
    if isinstance(ex, Unauthorized):
        resp.set_header("WWW-Authenticate", "Bearer")
    _send_error(req, resp, ex.status, ex.to_dict())


def _http_error(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: Any
) -> None:
    resp.set_headers(ex.headers or {})
    try:
        phrase = HTTPStatus(ex.status_code).phrase
    except ValueError:
        phrase = "error"
    message = ex.description or (phrase if ex.title == ex.status else ex.title) or phrase
    if ex.status_code == 404 and not ex.description:
        message = f"no such endpoint: {req.method} {req.path}"
    elif ex.status_code == 405 and not ex.description:
        message = f"{req.method} is not allowed on {req.path}"
    _send_error(req, resp, ex.status_code, {"code": _snake(phrase), "message": message})


def _unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any) -> None:
    log.exception("unexpected error on %s %s", req.method, req.path)
    _send_error(req, resp, 500, {"code": "internal_error", "message": "internal error"})


def create_app(
    state: SandboxState,
    deliverer: Deliverer,
    dice: FaultDice,
    secret: str,
    merchant: str | None = None,
) -> falcon.App:
    """The gateway's WSGI app over its state, delivery worker and fault dice."""
    app = falcon.App(media_type=falcon.MEDIA_JSON)
    app.req_options.strip_url_path_trailing_slash = True
    auth = _Auth(secret)
    app.add_route("/pay", PayResource(state, deliverer, dice, secret, merchant))
    app.add_route("/v1/payments", PaymentsResource(state, auth))
    app.add_route("/v1/payments/{order}", PaymentResource(state, auth))
    app.add_route("/v1/payments/{order}/expire", ExpireResource(state, auth))
    app.add_route("/v1/refunds", RefundsResource(state, deliverer, dice, auth))
    app.add_route("/v1/deliveries", DeliveriesResource(state, auth))
    app.add_route("/v1/events", EventsResource(state, auth))
    app.add_route("/healthz", HealthResource(state))
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(falcon.HTTPError, _http_error)
    app.add_error_handler(ShopError, _shop_error)
    return app
