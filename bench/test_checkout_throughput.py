"""Checkout through gunicorn (2 workers, 32 clients) against a bare durable insert.

Both run side by side in one session on the same database kind, so the ratio holds on
a noisy machine. ``wrk`` drives the load (apt-get install wrk).

    .venv/bin/pytest bench/test_checkout_throughput.py -s -p no:randomly
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from ecshop.benchapps import CEILINGS
from ecshop.testing.sandbox import SandboxGatewayProcess
from ecshop.testing.servers import free_port
from ecshop.testing.shop import ShopProcess

BODY = (
    '{"lines":[{"sku":"BENCH","qty":1}],"customer":{"email":"b@example.com"},"gateway":"sandbox"}'
)
DURATION = "10s"
ADMIN_TOKEN = "bench-admin-token-of-32-characters"
RESULTS: dict[str, dict[str, float]] = {}


def wrk(url: str, path: str) -> dict[str, float]:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        "local codes = {}\n"
        "response = function(status) codes[status] = (codes[status] or 0) + 1 end\n"
    )
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{DURATION}", "--latency", "-s", str(script), url + path],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99_raw = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99_raw, out
    p99 = float(p99_raw.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_raw.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p99_ms": p99, "errors": float(non2xx.group(1)) if non2xx else 0.0}


def _env(kind: str, tmp: Path, bench_redis, bench_mariadb, gateway) -> dict[str, str]:
    if kind.startswith("embedded"):
        db = f"sqlite:///{tmp}/bench-{free_port()}.db"
        extra = {"ECSHOP_THREADS": "1"}  # sync workers
        if kind == "embedded-group":
            extra = {"ECSHOP_THREADS": "8", "ECSHOP_GROUP_COMMIT": "on"}
    else:
        name = f"bench_{free_port()}"
        bench_mariadb.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        db = bench_mariadb.url(name)
        extra = {"ECSHOP_REDIS_URL": bench_redis.unix_url, "ECSHOP_THREADS": "1"}
        if kind == "mariadb-redis-threads":
            extra["ECSHOP_THREADS"] = "8"  # group commit stays off: auto is on for SQLite only
    return {"ECSHOP_DATABASE_URL": db, "ECSHOP_ADMIN_TOKEN": ADMIN_TOKEN, "ECSHOP_CHECKOUT_RATE_LIMIT": "0", "ECSHOP_RECONCILE_INTERVAL": "0",
            "ECSHOP_SECRET_KEY": secrets.token_hex(32),
            "ECSHOP_GATEWAY_SANDBOX_URL": gateway.url, "ECSHOP_GATEWAY_SANDBOX_SECRET": gateway.secret,
            "ECSHOP_PLUGINS_DIR": str(Path(__file__).resolve().parents[1] / "plugins"), **extra}  # fmt: skip


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
@pytest.mark.parametrize(
    "kind", ["embedded", "embedded-group", "mariadb-redis", "mariadb-redis-threads"]
)
def test_checkout_vs_bare_insert(benchmark, kind, tmp_path, request):
    local = kind.startswith("embedded")
    bench_redis = None if local else request.getfixturevalue("bench_redis")
    bench_mariadb = None if local else request.getfixturevalue("bench_mariadb")
    gateway = SandboxGatewayProcess(directory=tmp_path).start()
    env = _env(kind, tmp_path, bench_redis, bench_mariadb, gateway)
    shop = ShopProcess(env=env, workers=2, log_path=tmp_path / "shop.log").start()
    try:
        resp = requests.post(f"{shop.url}/api/v1/admin/products", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                             json={"sku": "BENCH", "name": "bench", "price": 100, "on_hand": 10_000_000})  # fmt: skip
        assert resp.status_code == 201, resp.text
        checkout = benchmark.pedantic(
            wrk, args=(shop.url, "/api/v1/checkout"), rounds=1, iterations=1
        )
        metrics = requests.get(
            f"{shop.url}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        ).text
        commits = re.search(r"ecshop_group_commits_total(?:\{[^}]*\})? (\d+)", metrics)
        writes = re.search(r"ecshop_group_commit_writes_total(?:\{[^}]*\})? (\d+)", metrics)
        if commits and writes and int(commits.group(1)):
            checkout["writes_per_commit"] = int(writes.group(1)) / int(commits.group(1))
    finally:
        shop.stop()
    # NOTE: the same gunicorn settings as the shop (sync or threaded workers alike), so
    # the ratio compares the endpoints, not two server configurations.
    bare = ShopProcess(env=env, workers=2, log_path=tmp_path / "bare.log",
                       app=CEILINGS["durable_insert"])  # fmt: skip
    try:
        bare.start()
        baseline = wrk(bare.url, "/api/v1/checkout")
    finally:
        bare.stop()
        gateway.stop()
    ratio = checkout["rps"] / baseline["rps"]
    benchmark.extra_info.update({"checkout": checkout, "bare_insert": baseline, "ratio": ratio})
    RESULTS[kind] = {"ratio": ratio, **{f"checkout_{k}": v for k, v in checkout.items()},
                     **{f"bare_{k}": v for k, v in baseline.items()}}  # fmt: skip
    grouped = (
        f" ({checkout['writes_per_commit']:.1f} checkouts per commit)"
        if "writes_per_commit" in checkout
        else ""
    )
    print(f"\n{kind}: checkout {checkout['rps']:.0f} rps p99 {checkout['p99_ms']:.1f} ms{grouped}; "
          f"bare insert {baseline['rps']:.0f} rps p99 {baseline['p99_ms']:.1f} ms; ratio {ratio:.2f}")  # fmt: skip
    assert checkout["errors"] == 0 and baseline["errors"] == 0
