"""Load drivers for the end-to-end tests: real client processes, bounded in count."""

from __future__ import annotations

import random
from concurrent.futures import ProcessPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests


def _settle(session: requests.Session, gateway_url: str, redirect_url: str, action: str) -> int:
    fields = dict(parse_qsl(urlsplit(redirect_url).query))
    fields["action"] = action
    resp = session.post(f"{gateway_url}/pay", data=fields, allow_redirects=False, timeout=30)
    return resp.status_code


def _client(
    args: tuple[str, str, list[str], int, int, tuple[float, float]],
) -> list[dict[str, Any]]:
    shop_url, gateway_url, skus, count, seed, mix = args
    rng = random.Random(seed)
    session = requests.Session()
    results = []
    for _ in range(count):
        sku = rng.choice(skus)
        body = {
            "lines": [{"sku": sku, "qty": 1}],
            "customer": {"email": "chaos@example.com"},
            "gateway": "sandbox",
        }
        try:
            resp = session.post(f"{shop_url}/api/v1/checkout", json=body, timeout=30)
        except requests.RequestException as exc:
            results.append({"status": 0, "error": str(exc)})
            continue
        entry: dict[str, Any] = {"status": resp.status_code, "sku": sku}
        if resp.status_code == 201:
            order = resp.json()
            entry["number"] = order["number"]
            roll = rng.random()
            action = "pay" if roll < mix[0] else "decline" if roll < mix[0] + mix[1] else "abandon"
            entry["action"] = action
            if action != "abandon":
                entry["gateway_status"] = _settle(
                    session, gateway_url, order["payment"]["redirect_url"], action
                )
        results.append(entry)
    return results


def run_checkouts(shop_url: str, gateway_url: str, skus: list[str], total: int, *, clients: int = 8,
                  seed: int = 7, mix: tuple[float, float] = (0.6, 0.2)) -> list[dict[str, Any]]:  # fmt: skip
    """``total`` checkouts from ``clients`` processes; each pays, declines or abandons."""
    per = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    jobs = [(shop_url, gateway_url, skus, n, seed * 1000 + i, mix) for i, n in enumerate(per)]
    with ProcessPoolExecutor(max_workers=clients) as pool:
        return [entry for chunk in pool.map(_client, jobs) for entry in chunk]
