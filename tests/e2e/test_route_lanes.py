"""Access is decided on the matched route, not on the spelling of the path.

The test walks the app's own route table, so a route added later is covered without
editing it. Every route is asked for under many spellings of its path (``//``, ``///``,
absolute-form targets, encoded slashes, dot segments, a trailing slash) on a real
gunicorn: whatever spelling the router resolves to an admin route must meet the admin
guard, and maintenance mode and load shedding must close exactly the storefront routes.
"""

from __future__ import annotations

import http.client
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecshop import maintenance
from ecshop.app import create_app
from ecshop.config import load_config
from ecshop.resources.middleware import ADMIN, ALWAYS_OPEN, lane_of
from ecshop.resources.openapi import METHODS
from ecshop.store import open_store


def routes(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """``(method, path, lane)`` for every responder of the app's route table, with each
    path parameter filled in."""
    url = f"sqlite:///{tmp_path}/routes.db"
    store = open_store(url)
    store.migrate()
    store.close()
    app: Any = create_app(load_config({"ECSHOP_DATABASE_URL": url, "ECSHOP_PLUGINS_DIR": "-"}))
    try:
        for template, resource, suffix in app.route_table:
            path = re.sub(r"{\w+}", "X-1", template)
            for method in METHODS:
                if hasattr(resource, f"on_{method}" + (f"_{suffix}" if suffix else "")):
                    yield method.upper(), path, lane_of(template)
    finally:
        app.shop.close()


def spellings(path: str, port: int) -> list[str]:
    """Ways a client can write ``path`` that a server might route to the same place."""
    head, _, tail = path.rpartition("/")
    return [
        path,
        "/" + path,
        "//" + path,
        path + "/",
        f"http://127.0.0.1:{port}{path}",
        f"http://127.0.0.1:{port}/{path}",
        head + "%2F" + tail,
        path.replace("/", "%2F").replace("%2F", "/", 1),
        "/." + path,
        "/x/.." + path,
        path.replace("/", "/./", 1),
        "/" + path[1:].replace("/", "%2f"),
        "%2f" + path[1:],
    ]


def send(port: int, method: str, target: str, token: str | None,
         extra: dict[str, str] | None = None) -> tuple[int, str]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json", **(extra or {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = b"{}" if method in ("POST", "PUT", "PATCH") else None
        # NOTE: http.client sends the target exactly as given (no normalisation).
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        try:
            code = json.loads(text)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = ""
        return resp.status, code
    finally:
        conn.close()


def unrouted(status: int, code: str) -> bool:
    """No route was reached: Falcon's own 404 (not a resource's ``not_found``), or the
    HTTP server refused the request line itself (400 without the shop's error body)."""
    return (status == 404 and code != "not_found") or (status == 400 and not code)


@pytest.mark.parametrize("token_set", [True, False], ids=["token-set", "token-unset"])
def test_every_spelling_of_an_admin_route_meets_the_guard(
    make_stack: Any, tmp_path: Path, token_set: bool
) -> None:
    env = {} if token_set else {"ECSHOP_ADMIN_TOKEN": ""}
    stack = make_stack("embedded", **env)
    port = stack.shop.port
    before = stack.http.get(f"{stack.shop.url}/api/v1/products").json()["items"]
    admin = [(m, p) for m, p, lane in routes(tmp_path) if lane == ADMIN]
    assert len(admin) >= 10, admin
    refused = 401 if token_set else 403
    checked = 0
    for method, path in admin:
        for target in spellings(path, port):
            status, code = send(port, method, target, None)
            if unrouted(status, code):
                if token_set:  # it must not route with the token either: not an admin route
                    assert unrouted(*send(port, method, target, stack.admin_token)), target
                continue
            assert status == refused, f"{method} {target} without a token answered {status} {code}"
            checked += 1
    # every route under its plain spelling and the doubled slashes at least
    assert checked >= 3 * len(admin)
    after = stack.http.get(f"{stack.shop.url}/api/v1/products").json()["items"]
    assert after == before


def test_maintenance_closes_the_storefront_lane_under_every_spelling(
    make_stack: Any, tmp_path: Path
) -> None:
    stack = make_stack("embedded")
    port = stack.shop.port
    table = list(routes(tmp_path))
    assert {lane for _, _, lane in table} >= {ADMIN, "payments", "service", "storefront"}
    routed = [
        (method, target, lane)
        for method, path, lane in table
        for target in spellings(path, port)
        if not unrouted(*send(port, method, target, stack.admin_token))
    ]
    stack.cli("maintenance", "on", "--message", "moving", check=True)
    time.sleep(2 * maintenance.CACHE_SECONDS)  # each worker reads the switch at most this often
    for method, target, lane in routed:
        status, code = send(port, method, target, stack.admin_token)
        if lane in ALWAYS_OPEN:
            assert code != "maintenance", f"{method} {target} ({lane}) was closed"
        else:
            assert (status, code) == (503, "maintenance"), f"{method} {target}: {status} {code}"


def test_shedding_answers_exactly_the_storefront_lane_under_every_spelling(
    make_stack: Any, tmp_path: Path
) -> None:
    """A request stamped as queued for a minute: every storefront spelling is shed, by
    the WSGI-level shedder or the middleware; no payments, admin or service spelling is."""
    stack = make_stack("embedded", ECSHOP_SHED_QUEUE_MS="1000")
    port = stack.shop.port
    table = list(routes(tmp_path))
    stale = {"X-Request-Start": f"t={time.time() - 60:.3f}"}
    shed = 0
    for method, path, lane in table:
        for target in spellings(path, port):
            if unrouted(*send(port, method, target, stack.admin_token)):
                continue
            status, code = send(port, method, target, stack.admin_token, stale)
            if lane in ALWAYS_OPEN:
                assert code != "overloaded", f"{method} {target} ({lane}) was shed"
            else:
                assert (status, code) == (503, "overloaded"), f"{method} {target}: {status} {code}"
                shed += 1
    assert shed >= 2 * len([1 for _, _, lane in table if lane not in ALWAYS_OPEN])
