"""The ``ecshop`` command line. Exit 0 on success, non-zero with one line on stderr."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ecshop import __version__
from ecshop.config import Config, check_serving, child_environ, load_config
from ecshop.config import _positive_int as config_positive_int
from ecshop.errors import ShopError
from ecshop.files import private_dir
from ecshop.logconf import configure_logging
from ecshop.redact import mask

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")


def _shop(config: Config) -> Any:
    from ecshop.app import build_shop

    return build_shop(config)


def cmd_migrate(args: argparse.Namespace, config: Config) -> int:
    from ecshop.store import open_store

    store = open_store(config.database_url, lock_timeout=config.db_lock_timeout)
    applied = store.migrate()
    version = store.schema_version()
    if applied:
        print(f"migrated {store.describe()} to schema version {version} (applied {applied})")
    else:
        print(f"{store.describe()} is up to date (schema version {version})")
    return 0


def cmd_info(args: argparse.Namespace, config: Config) -> int:
    from ecshop.stockcore import describe
    from ecshop.store import open_store

    print(f"ecshop {__version__}")
    print(f"python {platform.python_version()} ({platform.python_implementation()})")
    print(f"stock core: {describe()}")
    down = []
    store = open_store(config.database_url, lock_timeout=config.db_lock_timeout)
    try:
        print(
            f"database: {store.describe()} — {store.server_version()}, schema {store.schema_version()}"
        )
    except Exception as exc:
        print(mask(f"database: {store.describe()} — unreachable: {exc}"))
        down.append("the database")
    if config.redis_url:
        line, up = _redis_info(config.redis_url)
        print(line)
        if not up:
            down.append("Redis")
    else:
        print("stock engine: sql (in the database)")
    print(f"mail: {_mail_info(config)}")
    print(f"data folder: {config.data_folder.absolute()}")
    if down:
        print(f"ecshop: {' and '.join(down)} cannot be reached", file=sys.stderr)
        return 1
    return 0


def _mail_info(config: Config) -> str:
    if config.smtp_url:
        return mask(config.smtp_url)
    return (
        f"files in {config.mail_dir}" if config.mail_dir else "off (no SMTP server or mail folder)"
    )


def _redis_info(url: str) -> tuple[str, bool]:
    """A line about the Redis at ``url``, and whether it answered."""
    import redis
    from redis.sentinel import SentinelConnectionPool

    from ecshop._redisurl import client_for

    try:
        client = client_for(url, timeout=5)
        server = client.info("server")
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy", "?")
        pool = client.connection_pool
        where = ""
        if isinstance(pool, SentinelConnectionPool):
            host, port = pool.get_master_address()
            where = f"primary {host}:{port} through Sentinel, "
        line = (f"stock engine: redis {server.get('redis_version')} at {url} "
                f"({where}maxmemory-policy {policy})")  # fmt: skip
    except (redis.RedisError, ValueError) as exc:
        return mask(f"stock engine: redis at {url} — unreachable: {exc}"), False
    return mask(line), True


def _check_admin_access(config: Config) -> None:
    """Refuse to serve a shop nobody can run: no admin account and no admin token."""
    from ecshop.store import open_store

    if config.admin_token:
        return
    store = open_store(config.database_url, lock_timeout=config.db_lock_timeout)
    try:
        with store.read() as tx:
            accounts = tx.scalar("SELECT COUNT(*) FROM admin_users WHERE disabled_at IS NULL")
    finally:
        store.close()
    if not accounts:
        raise ShopError(
            "there is no way into this shop's admin: make an owner account with "
            "`ecshop admin create-user <name>` (or set ECSHOP_ADMIN_TOKEN for the admin API)"
        )


def cmd_admin(args: argparse.Namespace, config: Config) -> int:
    import getpass

    from ecshop import audit
    from ecshop.admins import AdminUsers
    from ecshop.store import open_store
    from ecshop.throttle import Throttle

    store = open_store(config.database_url, lock_timeout=config.db_lock_timeout)
    try:
        admins = AdminUsers(store, Throttle(store))
        if args.admin_command == "list-users":
            for user in admins.all():
                state = "disabled" if user["disabled_at"] else "active"
                totp = ", totp" if user["totp"] else ""
                print(f"{user['username']}\t{user['role']}\t{state}{totp}")
            return 0
        password = config.admin_password
        if not password:
            if not sys.stdin.isatty():
                raise ShopError("set ECSHOP_ADMIN_PASSWORD, or run this in a terminal to type it")
            password = getpass.getpass(f"password for {args.username}: ")
            if getpass.getpass("again: ") != password:
                raise ShopError("the two passwords differ")
        user = admins.create(args.username, password, args.role, totp=args.totp)
        audit.record(store, audit.Actor.cli(), "admin.create_user", user["username"],
                     after={"role": user["role"], "totp": bool(args.totp)})  # fmt: skip
        print(f"admin account {user['username']} ({user['role']}) created")
        if args.totp:
            print(f"add it to an authenticator app: {user['totp_uri']}")
        return 0
    finally:
        store.close()


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    from ecshop.plugins import load_plugins

    check_serving(config)
    _check_bind(args.bind)
    cmd_migrate(args, config)
    _check_admin_access(config)
    host = load_plugins(config)
    for line in host.plugin_lines() + host.gateway_lines():
        print(f"ecshop serve: {line}", file=sys.stderr, flush=True)
    argv = [
        sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF),
        "--bind", args.bind, "--workers", str(args.workers), "ecshop.app:create_app()",
    ]  # fmt: skip
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover - execv does not return


def _check_bind(bind: str) -> None:
    """Fail in one line when ``bind`` (``host:port`` or ``unix:path``) cannot be listened
    on, before gunicorn would retry it five times and log every try."""
    import errno
    import socket

    if bind.startswith(("unix:", "fd://")):
        return
    host, sep, port_text = bind.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ShopError(f"--bind {bind}: expected host:port (e.g. 127.0.0.1:8000) or unix:/path")
    host = host.strip("[]") or "0.0.0.0"
    try:
        infos = socket.getaddrinfo(host, int(port_text), type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)  # fmt: skip
    except socket.gaierror as exc:
        raise ShopError(f"--bind {bind}: cannot resolve {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # NOTE: as gunicorn binds: a port left in TIME_WAIT is free to take.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ShopError(
                    f"--bind {bind}: the address is in use (another shop or "
                    "server listens there): stop it or choose another --bind"
                ) from None
            raise ShopError(f"--bind {bind}: cannot listen there: {exc.strerror}") from None


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ShopError(f"{url}: the process exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise ShopError(f"{url} did not answer within {timeout}s")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    from ecshop import demo
    from ecshop.testing.servers import free_port

    _check_bind(args.bind)
    data = private_dir(Path(args.data_dir).resolve())
    gateway_secret, admin_token, secret_key = demo.secrets_in(data)
    admin_token = config.admin_token or admin_token
    secret_key = config.secret_key or secret_key
    host, _, port = args.bind.rpartition(":")
    gw_port = args.gateway_port or free_port()
    env = {
        "ECSHOP_DATABASE_URL": f"sqlite:///{data / 'shop.db'}",
        "ECSHOP_DATA_DIR": str(data),
        "ECSHOP_ADMIN_TOKEN": admin_token,
        "ECSHOP_SECRET_KEY": secret_key,
        "ECSHOP_BASE_URL": f"http://{host}:{port}",
        "ECSHOP_GATEWAY_SANDBOX_URL": f"http://127.0.0.1:{gw_port}",
        "ECSHOP_GATEWAY_SANDBOX_SECRET": gateway_secret,
        "ECSHOP_MAIL_DIR": config.mail_dir or str(data / "mail"),
        "ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT": config.gateway_settings("bank_transfer").get(
            "account", "Demo Bank, Main Branch, ordinary 1234567 (demo: send no money)"
        ),
    }
    child = child_environ(env)
    demo_config = load_config(child)
    check_serving(demo_config)
    from ecshop.store import open_store

    store = open_store(demo_config.database_url)
    store.migrate()
    shop = _shop(demo_config)
    added = demo.seed(shop.store, shop.stock, demo_config.currency)
    owner, owner_password = demo.owner_account(shop.store, data)
    shop.close()
    # NOTE: SIGTERM (a service manager, `kill`) stops the demo as Ctrl+C does: the
    # children are stopped below, not left running without their parent.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    gateway = subprocess.Popen(
        [sys.executable, "-m", "ecshop.sandbox.server", "--port", str(gw_port),
         "--state", str(data / "sandbox-gateway.db")],
        env=child,
    )  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--bind", args.bind,
         "--workers", str(args.workers), "ecshop.app:create_app()"],
        env=child,
    )  # fmt: skip
    try:
        _wait_http(f"http://{args.bind}/api/v1/products", server)
        base = f"http://{args.bind}"
        print(f"ecshop demo: {added} products added, data in {data}")
        print(f"  shop:            {base}/")
        print(f"  catalog (JSON):  {base}/api/v1/products")
        print(f"  OpenAPI:         {base}/api/openapi.json")
        print(f"  sandbox gateway: http://127.0.0.1:{gw_port}")
        print(f"  admin pages:     {base}/admin (user {owner}, password {owner_password})")
        print(f"  admin API token: {admin_token}")
        print(f"  buyers' mail:    {child['ECSHOP_MAIL_DIR']} (.eml files)")
        print("Press Ctrl+C to stop.", flush=True)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in (server, gateway):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def cmd_plugins(args: argparse.Namespace, config: Config) -> int:
    import logging

    from ecshop.plugins import load_plugins

    # NOTE: the report says everything; log lines would double it on stderr.
    logging.getLogger("ecshop.plugins").disabled = True
    host = load_plugins(config)
    print(host.report())
    if args.strict:
        problems = host.problems()
        for line in problems:
            print(f"ecshop plugins: {line}", file=sys.stderr)
        return 1 if problems else 0
    return 0


def cmd_stock(args: argparse.Namespace, config: Config) -> int:
    from ecshop.stock import cli as stock_cli

    shop = _shop(config)
    try:
        from ecshop import audit

        if args.stock_command == "audit":
            drift = shop.stock.audit() if args.fix else None
            code = int(stock_cli.audit(shop, args.fix))
            if drift:
                audit.record(shop.store, audit.Actor.cli(), "stock.rebuild", "engine",
                             {"drift": drift}, {"drift": shop.stock.audit()})  # fmt: skip
            return code
        before = shop.stock.audit()
        code = int(stock_cli.rebuild(shop))
        audit.record(shop.store, audit.Actor.cli(), "stock.rebuild", "engine", {"drift": before},
                     {"drift": shop.stock.audit()})  # fmt: skip
        return code
    finally:
        shop.close()


def cmd_reconcile(args: argparse.Namespace, config: Config) -> int:
    import threading

    shop = _shop(config)
    try:
        if args.once:
            return _reconcile_once(shop, args)
        stop = threading.Event()
        # NOTE: a stop (SIGTERM) ends the loop, which gives the lease back at once.
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        try:
            shop.reconciler.run_forever(args.interval or config.reconcile_interval, stop)
        except KeyboardInterrupt:
            stop.set()
        return 0
    finally:
        shop.close()


def _reconcile_once(shop: Any, args: argparse.Namespace) -> int:
    """One pass here, or, while another process (``ecshop serve``) leads, its next pass
    with ``--wait``; without it, name the leader and exit 3."""
    from ecshop.reconcile import LEASE, acquire_lease, last_pass, lease_holder, release_lease

    holder = shop.reconciler.holder
    started = time.time()
    deadline = time.monotonic() + (args.wait or 0)
    while not acquire_lease(shop.store, LEASE, holder, ttl=300):
        leader = lease_holder(shop.store, LEASE)
        done = last_pass(shop.store)
        if done is not None and done[0] > started:
            print(f"reconcile: the pass of {leader[0] if leader else 'the leader'}: {done[1]}")
            return 0
        if time.monotonic() >= deadline:
            if args.wait:
                print(f"ecshop: the leader made no pass within {args.wait:g}s", file=sys.stderr)
            elif leader:
                until = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(leader[1]))
                print(f"ecshop: the reconciler of {leader[0]} leads (its lease runs until "
                      f"{until}, renewed every pass): it settles what this pass would; add "
                      "--wait SECONDS to wait for its next pass", file=sys.stderr)  # fmt: skip
            return 3
        time.sleep(0.5)
    try:
        report = shop.reconciler.run_once(
            batch=args.batch,
            keep_going=lambda: acquire_lease(shop.store, LEASE, holder, ttl=300),
        )
        print(f"reconcile: {report}")
    finally:
        release_lease(shop.store, LEASE, holder)
    return 0


def cmd_mail(args: argparse.Namespace, config: Config) -> int:
    from ecshop.reconcile import LEASE, acquire_lease, release_lease

    shop = _shop(config)
    try:
        holder = shop.reconciler.holder
        # NOTE: the reconciler's lease: one host sends, whether from here or its loop.
        if not acquire_lease(shop.store, LEASE, holder, ttl=300):
            print("ecshop: another reconciler holds the lease; try again later", file=sys.stderr)
            return 3
        try:
            report = shop.mail.send_due(limit=args.limit)
        finally:
            release_lease(shop.store, LEASE, holder)
        print(f"mail: {report}")
        return 1 if report.retried or report.failed else 0
    finally:
        shop.close()


def cmd_maintenance(args: argparse.Namespace, config: Config) -> int:
    from ecshop import audit, maintenance
    from ecshop.store import open_store

    store = open_store(config.database_url, lock_timeout=config.db_lock_timeout)
    before = maintenance.read(store)
    state = maintenance.Maintenance(args.state == "on", args.message, args.retry_after)
    maintenance.write(store, state)
    audit.record(store, audit.Actor.cli(), "maintenance.set", "maintenance", before.__dict__,
                 state.__dict__)  # fmt: skip
    print(f"maintenance mode {args.state}" + (f": {args.message}" if args.message else ""))
    return 0


def cmd_sandbox_gateway(args: argparse.Namespace, config: Config) -> int:
    from ecshop.sandbox import server as sandbox_server

    return int(sandbox_server.main(args.rest))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {n}" for table, n in counts.items() if n)


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    from ecshop import dataio
    from ecshop.store import open_store

    store = open_store(config.database_url, lock_timeout=config.db_lock_timeout)
    counts = dataio.export(store, args.path)
    print(f"exported {store.describe()} to {args.path}: {_counts(counts) or 'empty'}")
    return 0


def cmd_backup(args: argparse.Namespace, config: Config) -> int:
    from ecshop import dataio
    from ecshop.store import open_store

    folder = private_dir(args.dir or config.data_folder / "backups")
    path = folder / f"ecshop-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.jsonl.gz"
    store = open_store(config.database_url, lock_timeout=config.db_lock_timeout)
    counts = dataio.export(store, path)
    # NOTE: a backup is only one once it reads back whole.
    if dataio.verify(path) != counts:
        print(f"ecshop: backup {path} does not read back whole", file=sys.stderr)
        return 1
    print(f"backup {path}: {_counts(counts) or 'empty'} (verified)")
    if args.keep:
        old = sorted(folder.glob("ecshop-*.jsonl.gz"))[: -args.keep]
        for stale in old:
            stale.unlink()
        if old:
            print(f"removed {len(old)} older backup(s), kept {args.keep}")
    return 0


def cmd_import(args: argparse.Namespace, config: Config) -> int:
    from ecshop import dataio
    from ecshop.store import open_store

    if args.database_url:
        config = load_config({**os.environ, "ECSHOP_DATABASE_URL": args.database_url})
    store = open_store(config.database_url, lock_timeout=config.db_lock_timeout)
    store.migrate()
    counts = dataio.import_(store, args.path)
    print(f"imported {args.path} into {store.describe()}: {_counts(counts) or 'empty'}")
    from ecshop import audit

    audit.record(store, audit.Actor.cli(), "shop.import", str(args.path)[:255], None, counts)
    if config.redis_url:
        from ecshop.stock import cli as stock_cli

        shop = _shop(config)
        try:
            stock_cli.rebuild(shop)
        finally:
            shop.close()
    return 0


def cmd_journal(args: argparse.Namespace, config: Config) -> int:
    from ecshop import audit, journalio
    from ecshop.store import open_store

    if args.journal_command == "export":
        store = open_store(config.database_url, lock_timeout=config.db_lock_timeout)
        try:
            since = None if args.since is None else journalio.parse_time(args.since)
            count = journalio.export_journal(store, args.path, after_backup=args.after_backup,
                                             since=since)  # fmt: skip
        finally:
            store.close()
        which = f"not in {args.after_backup}" if args.after_backup else f"since {args.since}"
        print(f"exported {count} journaled notification(s) {which} to {args.path}")
        return 0
    _, entries = journalio.read_journal(args.path)
    shop = _shop(config)
    try:
        carried = journalio.replay(shop.payments, entries)
        for item in carried:
            print(item.describe())
        unsettled = [c for c in carried if not c.settled]
        kinds = [c.kind for c in carried]
        summary = {kind: kinds.count(kind) for kind in dict.fromkeys(kinds)}
        audit.record(shop.store, audit.Actor.cli(), "journal.replay", Path(args.path).name,
                     None, {**summary, "not_settled": [c.describe() for c in unsettled]})  # fmt: skip
    finally:
        shop.close()
    print(f"replayed {len(carried)} notification(s) from {args.path}: "
          + (", ".join(f"{kind} {n}" for kind, n in summary.items()) or "none"))  # fmt: skip
    if unsettled:
        print(f"ecshop: {len(unsettled)} notification(s) could not be settled on this shop "
              "(listed above as NOT SETTLED); keep the file and settle them by hand",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _bench_command(argv: Sequence[str]) -> str:
    """The command as typed, for the report, without the admin token's value."""
    import shlex

    shown, hide = [], False
    for word in argv:
        shown.append("***" if hide else word.split("=", 1)[0] + "=***"
                     if word.startswith("--admin-token=") else word)  # fmt: skip
        hide = word == "--admin-token"
    return shlex.join(["ecshop", *shown])


def _report_folder(args: argparse.Namespace, config: Config) -> tuple[Path, str]:
    """``--report``, else ``bench-report`` in the data folder when it exists, else in the
    working folder; and which of them it is."""
    if args.report:
        return Path(args.report), "--report"
    if config.data_folder.is_dir():
        return config.data_folder / "bench-report", "in the data folder"
    return Path("bench-report"), "in the working folder"


def _sweep_list(text: str) -> list[int]:
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,2,4,8, got {text!r}") from None
    if not steps or min(steps) < 1:
        raise argparse.ArgumentTypeError(f"expected client counts of at least 1, got {text!r}")
    return steps


def cmd_bench(args: argparse.Namespace, config: Config) -> int:
    from ecshop.benchwrite import write_report

    common = {"clients": args.clients, "seconds": args.seconds, "max_clients": args.max_clients,
              "sweep": args.sweep or [], "step_seconds": args.step_seconds,
              "command": _bench_command(getattr(args, "argv", sys.argv[1:]))}  # fmt: skip
    if args.url:
        from ecshop.benchremote import RemoteBench

        local = [name for name in ("database_url", "redis_url", "workers", "stock")
                 if getattr(args, name) is not None]  # fmt: skip
        if local:
            flags = ", ".join("--" + name.replace("_", "-") for name in local)
            raise ShopError(f"--url measures a running shop as it is: {flags} cannot apply")
        token = args.admin_token or config.admin_token
        report = RemoteBench(url=args.url, admin_token=token, **common).run()
    else:
        from ecshop.benchrun import Bench

        report = Bench(stock=200 if args.stock is None else args.stock,
                       workers=2 if args.workers is None else args.workers, threads=config.threads,
                       database_url=args.database_url, redis_url=args.redis_url, **common).run()  # fmt: skip
    folder, where = _report_folder(args, config)
    written = write_report(report, folder)
    print(f"report ({where}): {', '.join(str(path) for path in written)}")
    if args.json:
        print(json.dumps(report.as_dict()))
    problems = report.problems()
    if problems:
        print(f"ecshop: bench saw {'; '.join(problems)}", file=sys.stderr)
        return 1
    return 0


def cmd_smoke_test(args: argparse.Namespace, config: Config) -> int:
    from ecshop.smoke import SmokeFailure, SmokeTest

    test = SmokeTest(args.base_url or config.base_url, args.admin_token or config.admin_token,
                     gateway=args.gateway, sku=args.sku, timeout=args.timeout,
                     metrics_token=config.metrics_token)  # fmt: skip
    try:
        number = test.run()
    except SmokeFailure as exc:
        print(mask(f"FAIL  {exc.message}"))
        print(mask(f"ecshop: smoke test failed: {exc.message}"), file=sys.stderr)
        return 1
    print(f"smoke test passed (test order {number})")
    return 0


def _positive_int(text: str) -> int:
    """The configuration's positive-integer check, with argparse's kind of error."""
    try:
        return config_positive_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of at least 1, got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecshop", description="A shop server that never loses an order."
    )
    parser.add_argument("--version", action="version", version=f"ecshop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, func: Callable[[argparse.Namespace, Config], int], help_text: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = add("demo", cmd_demo, "run the demo shop on SQLite with the sandbox gateway")
    p.add_argument("--bind", default="127.0.0.1:8000")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data-dir", default="ecshop-data")
    p.add_argument("--gateway-port", type=int, default=0)
    p = add("serve", cmd_serve, "serve the configured shop with gunicorn")
    p.add_argument("--bind", default="127.0.0.1:8000")
    p.add_argument("--workers", type=int, default=2)
    add("migrate", cmd_migrate, "create or upgrade the database schema")
    p = add("admin", cmd_admin, "manage the accounts of the admin pages")
    admin_sub = p.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    create = admin_sub.add_parser(
        "create-user",
        help="make an admin account (password typed twice, or from ECSHOP_ADMIN_PASSWORD)",
    )
    create.add_argument("username")
    create.add_argument("--role", choices=["owner", "staff"], default="owner",
                        help="owner (everything) or staff (no refunds, settings or accounts)")  # fmt: skip
    create.add_argument("--totp", action="store_true",
                        help="ask for an authenticator app's code at login too")  # fmt: skip
    admin_sub.add_parser("list-users", help="list the admin accounts")
    add("info", cmd_info, "show versions, the live stock core and the servers in use")
    p = add("plugins", cmd_plugins, "list plugins and gateways found, with their settings")
    p.add_argument("--strict", action="store_true",
                   help="exit 1, one line per problem on stderr, when an enabled plugin or "
                   "one of its gateways cannot run")  # fmt: skip
    p = add("stock", cmd_stock, "compare or rebuild the stock engine from the database")
    stock_sub = p.add_subparsers(dest="stock_command", required=True, metavar="ACTION")
    audit = stock_sub.add_parser("audit", help="print per-SKU drift; exit 1 if any")
    audit.add_argument("--fix", action="store_true", help="rebuild the engine when drift is found")
    stock_sub.add_parser(
        "rebuild", help="recompute the engine's counts and holds from the database"
    )
    p = add(
        "reconcile", cmd_reconcile, "settle orders stuck in pending_payment with their gateways"
    )
    p.add_argument("--once", action="store_true", help="one pass, then exit (for cron)")
    p.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                   help="with --once, while another process leads: wait up to SECONDS for "
                   "its next pass and report it (default: name the leader, exit 3)")  # fmt: skip
    p.add_argument(
        "--interval",
        type=float,
        default=0,
        help="seconds between passes (default ECSHOP_RECONCILE_INTERVAL)",
    )
    p.add_argument(
        "--batch",
        type=_positive_int,
        default=500,
        help="orders read per query; a pass goes through every stuck order (default 500)",
    )
    p = add("mail", cmd_mail, "send the buyers' mail that is due in the outbox")
    p.add_argument("mail_command", choices=["send"])
    p.add_argument("--limit", type=_positive_int, default=500, help="mails to send at most")
    p = add(
        "maintenance", cmd_maintenance, "turn maintenance mode on or off (payments keep landing)"
    )
    p.add_argument("state", choices=["on", "off"])
    p.add_argument("--message", default="")
    p.add_argument("--retry-after", type=int, default=300)
    p = add("export", cmd_export, "write the whole shop to one portable file (gzip JSON lines)")
    p.add_argument("path", help="file to write, e.g. shop.jsonl.gz")
    p = add("import", cmd_import, "load an export into a new, empty database (SQLite or MariaDB)")
    p.add_argument("path", help="file written by ecshop export or ecshop backup")
    p.add_argument("--database-url", help="the new, empty database (default ECSHOP_DATABASE_URL)")
    p = add("backup", cmd_backup, "export to a timestamped file in a folder and verify it")
    p.add_argument("--dir", help="folder (default: backups in the data folder)")
    p.add_argument("--keep", type=int, default=0, help="keep only the newest N backups")
    p = add("restore", cmd_import, "load a backup into a new, empty database (same as import)")
    p.add_argument("path", help="backup file")
    p.add_argument("--database-url", help="the new, empty database (default ECSHOP_DATABASE_URL)")
    p = add("journal", cmd_journal,
            "carry payment notifications that reached an old shop after its backup to the new one")  # fmt: skip
    journal_sub = p.add_subparsers(dest="journal_command", required=True, metavar="ACTION")
    carry = journal_sub.add_parser(
        "export", help="write this shop's journaled notifications that a backup does not hold "
        "(or received since a time) to a file (gzip JSON lines, mode 0600)")  # fmt: skip
    carry.add_argument("path", help="file to write, e.g. journal.jsonl.gz")
    which = carry.add_mutually_exclusive_group(required=True)
    which.add_argument("--after-backup", metavar="BACKUP",
                       help="the backup the new shop was restored from")  # fmt: skip
    which.add_argument("--since", metavar="TIME",
                       help="unix seconds or an ISO 8601 time with its offset")  # fmt: skip
    replay = journal_sub.add_parser(
        "replay", help="settle a journal file's notifications on this shop as if its gateway "
        "sent them now (idempotent; exit 1 when one names an unknown order or does not fit it)")  # fmt: skip
    replay.add_argument("path", help="file written by ecshop journal export")
    p = add(
        "bench",
        cmd_bench,
        "measure this server on a throwaway shop (or a running shop with --url): checkouts "
        "against their ceilings, settings, a concurrency sweep, pages, a flash sale; writes "
        "a report with what the server can take",
    )
    p.add_argument("--clients", type=int, default=8, help="concurrent client processes (default 8)")
    p.add_argument(
        "--seconds", type=float, default=10.0, help="length of the checkout run (default 10)"
    )
    p.add_argument("--stock", type=int, help="units in the flash sale (default 200)")
    p.add_argument("--workers", type=int, help="gunicorn workers of the throwaway shop (default 2)")
    p.add_argument("--database-url", help="an empty database to use instead of a temporary SQLite")
    p.add_argument("--redis-url", help="Redis for the stock engine (default: the SQL engine)")
    p.add_argument("--max-clients", type=_positive_int, default=64,
                   help="the sweep's last step: 1, 2, 4, ... up to N clients (default 64)")  # fmt: skip
    p.add_argument("--sweep", type=_sweep_list, metavar="N,N,...",
                   help="the sweep's steps instead, e.g. 1,2,4,8")  # fmt: skip
    p.add_argument("--step-seconds", type=float, default=3.0,
                   help="each sweep step and side-by-side slot (default 3)")  # fmt: skip
    p.add_argument("--report", metavar="DIR", help="folder of report.md, report.json and "
                   "sweep.png (default: bench-report in the data folder if it exists, "
                   "else in the working folder)")  # fmt: skip
    p.add_argument("--url", help="measure the running shop at this http(s) address instead, "
                   "on a product of the bench's own, through its test-mode gateway; every "
                   "order is cancelled and the product archived at the end")  # fmt: skip
    p.add_argument("--admin-token", help="with --url: its admin token (default ECSHOP_ADMIN_TOKEN)")
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    p = add(
        "smoke-test", cmd_smoke_test, "place a test-mode order end to end against a running shop"
    )
    p.add_argument("--base-url", help="the shop's URL (default ECSHOP_BASE_URL)")
    p.add_argument("--admin-token", help="admin token (default ECSHOP_ADMIN_TOKEN)")
    p.add_argument("--sku", help="SKU to order one unit of (default: the first with stock)")
    p.add_argument("--gateway", default="sandbox", help="payment gateway (default sandbox)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the payment")
    p = add(
        "sandbox-gateway", cmd_sandbox_gateway, "run the sandbox payment gateway as its own process"
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if args_list[:1] == ["sandbox-gateway"]:
        # Pass every flag through untouched: the gateway parses its own.
        args = argparse.Namespace(func=cmd_sandbox_gateway, rest=args_list[1:])
    else:
        args = parser.parse_args(args_list)
        args.argv = args_list  # as typed, for what reports say was run
        configure_logging()  # the sandbox gateway sets up its own
    try:
        config = load_config()
        if args.func is not cmd_sandbox_gateway:
            configure_logging(config.log_level, config.log_format,
                              repeat_every=config.log_repeat_every)  # fmt: skip
        return int(args.func(args, config))
    except ShopError as exc:
        print(f"ecshop: {mask(exc.message)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception:
        # NOTE: a driver's error can quote a URL; the traceback goes out masked.
        print(mask(traceback.format_exc()).rstrip(), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
