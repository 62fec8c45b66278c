"""The sandbox payment gateway as its own process: ``ecshop sandbox-gateway --port N``.

It behaves like a hosted-payment-page gateway (see "The sandbox gateway protocol" in
the API document): signed pay links, a page with Pay and Decline, capture once per
order, signed notifications retried with backoff, a status API, refunds and a ledger.
Its state lives in a small SQLite file, so a restarted gateway knows every payment
and resumes the deliveries it had not finished.

Endpoints (``/v1`` needs ``Authorization: Bearer <secret>``):

- ``GET /pay?merchant&order&amount&currency&notify_url&return_url&sig``: the pay page.
- ``POST /pay`` (form, the same fields + ``action=pay|decline``): settle, 303 to
  ``return_url`` (``order=`` added when the URL has none).
- ``GET /v1/payments/{order}``: ``{"order", "status", "amount", "currency",
  "payment_id", "refunded_amount"}``; status is ``pending`` (link opened),
  ``succeeded``, ``failed``, ``partially_refunded``, ``refunded``, or ``unknown``
  (200, with null amount) for an order the gateway never saw.
- ``GET /v1/payments?status=a,b&limit=&after=``: payments in the order first seen.
- ``POST /v1/refunds`` ``{"order", "amount"}`` (optional ``Idempotency-Key``).
- ``GET /v1/deliveries?order=&event=&limit=&after=``: every notification attempt.
- ``GET /v1/events?order=&limit=&after=``: every notification raised.
- ``GET /healthz``.

Fault switches act on notification deliveries; see ``_sandbox_delivery``. Note that
``--drop`` loses a notification for good (no retry): the shop must rely on its
reconciler and the status API to learn of that payment.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socketserver
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ecshop.config import load_config
from ecshop.errors import ConfigError, ShopError
from ecshop.sandbox.app import create_app
from ecshop.sandbox.delivery import Deliverer, FaultDice, Faults, RetryPolicy
from ecshop.sandbox.state import SandboxState

log = logging.getLogger("ecshop.sandbox_gateway")

DEFAULT_STATE = Path("ecshop-data") / "sandbox-gateway.db"


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """``wsgiref``'s server, one thread per request."""

    daemon_threads = True
    request_queue_size = 256


class QuietHandler(WSGIRequestHandler):
    """No access log on stderr; errors still go to the log."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def _probability(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be a probability from 0 to 1")
    return value


def _at_least(minimum: int) -> Any:
    def parse(raw: str) -> int:
        value = int(raw)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer of at least {minimum}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecshop sandbox-gateway",
        description="Run the sandbox payment gateway (hosted pay page, signed "
        "notifications, status API, refunds) with optional delivery faults.",
    )
    parser.add_argument("--port", type=_at_least(0), required=True, help="port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--secret", help="shared HMAC secret (default ECSHOP_GATEWAY_SANDBOX_SECRET)"
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=DEFAULT_STATE,
        help=f"SQLite state file (default {DEFAULT_STATE})",
    )
    parser.add_argument("--merchant", help="accept pay links for this merchant only")
    faults = parser.add_argument_group("fault switches (act on notification deliveries)")
    faults.add_argument(
        "--drop", type=_probability, default=0.0, metavar="R",
        help="lose each first delivery with probability R, for good (no retry)",
    )  # fmt: skip
    faults.add_argument(
        "--dup", type=_probability, default=0.0, metavar="R",
        help="deliver a delivered notification a second time with probability R",
    )  # fmt: skip
    faults.add_argument(
        "--delay-ms", type=_at_least(0), default=0, metavar="N",
        help="wait N ms before each delivery attempt",
    )  # fmt: skip
    faults.add_argument(
        "--reorder", action="store_true", help="hold deliveries briefly and send them shuffled"
    )
    faults.add_argument("--seed", type=int, help="seed the fault RNG for repeatable runs")
    retry = parser.add_argument_group("retries")
    retry.add_argument(
        "--retry-budget", type=_at_least(1), default=RetryPolicy.budget, metavar="N",
        help=f"attempts per notification, the first included (default {RetryPolicy.budget})",
    )  # fmt: skip
    retry.add_argument(
        "--retry-base-ms", type=_at_least(1), default=RetryPolicy.base_ms, metavar="N",
        help=f"first backoff, doubled per attempt up to {RetryPolicy.cap_ms} ms "
        f"(default {RetryPolicy.base_ms})",
    )  # fmt: skip
    return parser


def _secret(given: str | None) -> str:
    if given:
        return given
    secret = load_config().gateway_settings("sandbox").get("secret", "")
    if not secret:
        raise ConfigError("no secret: pass --secret or set ECSHOP_GATEWAY_SANDBOX_SECRET")
    return secret


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gateway until interrupted (SIGINT or SIGTERM). Returns the exit status."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sandbox-gateway %(message)s")
    try:
        secret = _secret(args.secret)
        state = SandboxState(args.state)
    except ShopError as exc:
        print(f"ecshop sandbox-gateway: {exc.message}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"ecshop sandbox-gateway: cannot open {args.state}: {exc}", file=sys.stderr)
        return 2
    faults = Faults(args.drop, args.dup, args.delay_ms, args.reorder, args.seed)
    dice = FaultDice(faults)
    deliverer = Deliverer(state, secret, dice, RetryPolicy(args.retry_budget, args.retry_base_ms))
    app = create_app(state, deliverer, dice, secret, args.merchant)
    try:
        server = make_server(
            args.host, args.port, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
        )
    except OSError as exc:
        state.close()
        print(
            f"ecshop sandbox-gateway: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 2
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    deliverer.start()
    port = server.server_address[1]
    print(
        f"sandbox gateway on http://{args.host}:{port} (state {args.state}, {faults})", flush=True
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        deliverer.stop()
        state.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
