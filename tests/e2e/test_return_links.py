"""The customer's way back from the gateway carries a short-lived signed ticket, never
the order's long-lived access token (gateways, browsers and proxies log URLs)."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode, urlsplit

from ecshop.signing import return_links


def _pay_fields(order: dict) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(order["payment"]["redirect_url"]).query))


def _return(stack, number: str, ticket: str, **headers: str):
    query = urlencode({"order": number, "ticket": ticket})
    return stack.http.get(f"{stack.shop.url}/payments/sandbox/return?{query}", headers=headers,
                          timeout=30)  # fmt: skip


def _ticket(order: dict) -> str:
    return dict(parse_qsl(urlsplit(_pay_fields(order)["return_url"]).query))["ticket"]


def test_the_gateway_never_sees_the_access_token_and_the_return_link_works(make_stack, tmp_path):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1200, 5)
    order = stack.checkout([("TEA", 1)], key="one-cart").json()
    token, pay_link = order["access_token"], order["payment"]["redirect_url"]
    replay = stack.checkout([("TEA", 1)], key="one-cart").json()
    assert replay["payment"]["redirect_url"] == pay_link  # the same links, not new ones
    fields = _pay_fields(order)
    return_url = fields["return_url"]
    assert token not in pay_link and token not in return_url
    assert "token=" not in return_url and "ticket=" in return_url
    page = stack.http.get(pay_link, timeout=30)
    assert page.status_code == 200 and token not in page.text

    paid = stack.http.post(f"{stack.gateway.url}/pay", data={**fields, "action": "pay"},
                           allow_redirects=False, timeout=30)  # fmt: skip
    assert paid.status_code == 303 and paid.headers["Location"] == return_url
    back = stack.http.get(return_url, timeout=30)
    assert back.status_code == 200, back.text
    assert 'data-status="paid"' in back.text and order["number"] in back.text
    as_json = stack.http.get(return_url, headers={"Accept": "application/json"}, timeout=30)
    assert as_json.json() == {"number": order["number"], "status": "paid", "test_mode": True}

    # Nothing the gateway keeps (its state file, its log) holds the access token.
    gateway_files = [p for p in tmp_path.iterdir() if p.name.startswith("sandbox-gateway")]
    assert gateway_files
    for path in gateway_files:
        assert token.encode() not in path.read_bytes(), path
    # API clients still use the access token; the ticket is no access token.
    api = f"{stack.shop.url}/api/v1/orders/{order['number']}"
    assert stack.http.get(api, params={"token": token}, timeout=30).json()["status"] == "paid"
    assert stack.http.get(api, params={"token": _ticket(order)}, timeout=30).status_code == 404


def test_a_tampered_foreign_or_expired_ticket_is_refused_like_an_unknown_order(make_stack):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1200, 5)
    mine, other = (stack.checkout([("TEA", 1)]).json() for _ in range(2))
    number, ticket = mine["number"], _ticket(mine)
    assert _return(stack, number, ticket).status_code == 200

    unknown = _return(stack, "NO-SUCH-ORDER", ticket)
    assert unknown.status_code == 404

    def refused_like_unknown(resp) -> bool:
        expected = unknown.json()["error"]["message"].replace("NO-SUCH-ORDER", number)
        error = resp.json()["error"]
        return resp.status_code == 404 and error == {**unknown.json()["error"],
                                                      "message": expected, "number": number}  # fmt: skip

    expires, _, mac = ticket.partition(".")
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    assert refused_like_unknown(_return(stack, number, f"{expires}.{flipped}"))
    assert refused_like_unknown(_return(stack, number, f"{int(expires) + 86400}.{mac}"))
    assert refused_like_unknown(_return(stack, number, _ticket(other)))
    assert refused_like_unknown(_return(stack, number, ""))

    # Signed with the shop's key, but by a clock ten days back: expired.
    hold = 900
    expired = return_links(stack.secret_key, hold, clock=lambda: time.time() - 10 * 86400)
    assert refused_like_unknown(_return(stack, number, expired.sign(number)))
    fresh = return_links(stack.secret_key, hold)  # the same key and format, but in date
    assert _return(stack, number, fresh.sign(number)).status_code == 200
