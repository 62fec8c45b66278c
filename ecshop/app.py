"""The WSGI application factory: ``create_app()`` wires config, stores and plugins.

gunicorn serves ``ecshop.app:create_app()``. Everything a resource needs is passed in
through the :class:`Shop` it receives; nothing is read from module globals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import falcon

from ecshop.admins import AdminUsers
from ecshop.checkout import CheckoutService
from ecshop.config import Config, load_config, multiprocess_dir
from ecshop.delivery import DeliveryPolicy
from ecshop.errors import ConfigError
from ecshop.hooks import HookRegistry
from ecshop.mailer import build_sender
from ecshop.maintenance import MaintenanceSwitch
from ecshop.media import MediaFolder
from ecshop.members import Members
from ecshop.metrics import announce_build, multiprocess_live
from ecshop.orders import OrderService
from ecshop.outbox import MailSender
from ecshop.payments.flow import PaymentFlow
from ecshop.payments.notifications import PaymentService
from ecshop.plugins import PluginHost, load_plugins
from ecshop.reconcile import Reconciler
from ecshop.render import Renderer
from ecshop.resources import (
    account,
    admin_bulk,
    admin_orders,
    admin_pages,
    admin_product_bulk,
    admin_products,
    admin_stock_pages,
    checkout_pages,
    errors,
    media,
    orders,
    payments,
    products,
    quote,
    service,
    static,
    storefront,
)
from ecshop.resources._page import PageSessions, multipart_handler, render
from ecshop.resources.context import AccessLog, RequestContext
from ecshop.resources.middleware import (
    ADMIN_PAGES,
    LoadShedder,
    MailNudge,
    MaintenanceGate,
    RequestGuard,
    ResponseMetrics,
    lane_of,
)
from ecshop.resources.openapi import OpenAPIResource
from ecshop.resources.ratelimit import RateLimiter
from ecshop.resources.shedding import EarlyShed
from ecshop.sessions import SessionStore
from ecshop.signing import return_links
from ecshop.stock import open_engine
from ecshop.stockcore import core
from ecshop.store import Store, open_store
from ecshop.tax import TaxPolicy
from ecshop.throttle import Throttle

log = logging.getLogger("ecshop")


@dataclass
class Shop:
    """The wired services of one shop process."""

    config: Config
    store: Store
    stock: Any
    plugins: PluginHost
    orders: OrderService
    checkout: CheckoutService
    payments: PaymentService
    flow: PaymentFlow
    reconciler: Reconciler
    mail: MailSender
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def hooks(self) -> HookRegistry:
        return self.plugins.hooks

    @property
    def gateways(self) -> dict[str, Any]:
        return self.plugins.gateways

    def close(self) -> None:
        self.stock.close()
        self.store.close()


def build_shop(config: Config, *, store: Store | None = None) -> Shop:
    """Open the store, check its schema, load plugins, open the stock engine, wire services."""
    store = store or open_store(
        config.database_url,
        lock_timeout=config.db_lock_timeout,
        group_commit=config.group_commit_on,
    )
    known = store.migrations()[-1][0]
    current = store.schema_version()
    if current != known:
        raise ConfigError(
            f"ECSHOP_DATABASE_URL: schema is version {current}, this ecshop needs {known}: run `ecshop migrate`"
        )
    plugins = load_plugins(config)
    stock = open_engine(config, store)
    _rebuild_if_empty(stock)
    hooks = plugins.hooks
    mail_on = config.mail_on or hooks.has_filter("mailer")
    order_service = OrderService(store, stock, hooks, hold_ttl=config.hold_ttl, mail=mail_on)
    payment_service = PaymentService(store, order_service, hooks, plugins.gateways)
    mail = build_sender(config, store, hooks)
    return Shop(
        config=config,
        store=store,
        stock=stock,
        plugins=plugins,
        orders=order_service,
        checkout=CheckoutService(
            store,
            stock,
            hooks,
            order_service,
            currency=config.currency,
            hold_ttl=config.hold_ttl,
            idempotency_ttl=config.idempotency_ttl,
            max_lines=config.max_lines_per_order,
            max_qty=config.max_qty_per_line,
            tax=TaxPolicy(dict(config.tax_rates), config.tax_rounding),
            delivery=DeliveryPolicy(
                config.delivery_slots,
                config.delivery_lead_days,
                config.delivery_range_days,
                config.timezone,
            ),
        ),
        payments=payment_service,
        flow=PaymentFlow(
            order_service,
            payment_service,
            plugins.gateways,
            base_url=config.base_url,
            return_links=return_links(config.secret_key, config.hold_ttl),
        ),
        reconciler=Reconciler(
            store,
            stock,
            order_service,
            payment_service,
            plugins.gateways,
            grace=config.reconcile_grace,
            unreachable_after=config.gateway_unreachable_after,
            release_unreachable=config.gateway_unreachable_release,
            mail=mail if mail_on else None,
        ),
        mail=mail,
    )


def _rebuild_if_empty(stock: Any) -> None:
    """A Redis that lost its data (first start, restart, flush) is rebuilt from the database."""
    try:
        if stock.needs_rebuild():
            stock.rebuild()
    except Exception as exc:  # Redis down: the engine answers 503 until it is back
        log.warning("stock engine not rebuilt at start-up: %s", exc)


class ShopApp(falcon.App):
    """A Falcon app that remembers its routes, so the OpenAPI document stays true."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.route_table: list[tuple[str, Any, str | None]] = []
        #: answers storefront requests that queued too long before the app sees them
        self.early_shed: EarlyShed | None = None

    def __call__(self, env: Any, start_response: Any) -> Any:
        shed = self.early_shed
        if shed is not None:
            answer = shed(env, start_response)
            if answer is not None:
                return answer
        return super().__call__(env, start_response)

    def shed_early(self, limit_ms: int) -> None:
        """Shed before the app (:mod:`ecshop.resources.shedding`); 0 turns it off."""
        self.early_shed = EarlyShed(self, super().__call__, limit_ms) if limit_ms else None

    def add_route(self, uri_template: str, resource: object, **kwargs: Any) -> None:
        self.route_table.append((uri_template, resource, kwargs.get("suffix")))
        super().add_route(uri_template, resource, **kwargs)


def _add_pages(app: ShopApp, shop: Shop, renderer: Renderer) -> None:
    """The storefront's HTML pages (docs/architecture.md, "Pages")."""
    app.add_route("/", storefront.Catalog(shop, renderer))
    app.add_route("/products/{sku}", storefront.Product(shop, renderer))
    app.add_route("/lang/{code}", storefront.Language())
    cart = storefront.Cart(shop, renderer)
    app.add_route("/cart", cart)
    app.add_route("/cart/add", cart, suffix="add")
    app.add_route("/cart/update", cart, suffix="update")
    app.add_route("/checkout", checkout_pages.CheckoutForm(shop, renderer))
    review = checkout_pages.Review(shop, renderer)
    app.add_route("/checkout/review", review)
    app.add_route("/checkout/place", review, suffix="place")
    app.add_route("/orders/{number}", checkout_pages.OrderPage(shop, renderer))
    login = account.Login(shop, renderer)
    app.add_route("/account/login", login)
    app.add_route("/account/logout", login, suffix="logout")
    app.add_route("/account/register", account.Register(shop, renderer))
    mine = account.Account(shop, renderer)
    app.add_route("/account", mine)
    app.add_route("/account/address", mine, suffix="address")
    login_admin = admin_pages.Login(shop, renderer)
    app.add_route("/admin/login", login_admin)
    app.add_route("/admin/logout", login_admin, suffix="logout")
    app.add_route("/admin", admin_pages.Dashboard(shop, renderer))
    app.add_route("/admin/maintenance", admin_pages.Maintenance(shop, renderer))
    app.add_route("/admin/plugins", admin_pages.Plugins(shop, renderer))
    app.add_route("/admin/members", admin_pages.Members(shop, renderer))
    app.add_route("/admin/audit", admin_pages.AuditLog(shop, renderer))
    _add_order_pages(app, shop, renderer)
    admin_products.add_routes(app, shop, renderer)
    admin_product_bulk.add_routes(app, shop, renderer)
    admin_stock_pages.add_routes(app, shop, renderer)
    reset = account.PasswordReset(shop, renderer)
    app.add_route("/account/reset", reset)
    app.add_route("/account/reset/new", reset, suffix="new")


def _add_order_pages(app: ShopApp, shop: Shop, renderer: Renderer) -> None:
    """The admin's order pages (docs/admin.md, "Orders")."""
    order_list = admin_orders.OrderList(shop, renderer)
    app.add_route("/admin/orders", order_list)
    app.add_route("/admin/orders.csv", order_list, suffix="csv")
    bulk = admin_bulk.BulkEdit(shop, renderer)
    app.add_route("/admin/orders/bulk", bulk)
    app.add_route("/admin/orders/bulk/{key}", bulk, suffix="key")
    detail = admin_orders.OrderDetail(shop, renderer)
    app.add_route("/admin/orders/{number}", detail)
    app.add_route("/admin/orders/{number}/slip", detail, suffix="slip")
    app.add_route("/admin/orders/{number}/receipt", detail, suffix="receipt")
    action = admin_orders.OrderAction(shop, renderer)
    for name in ("ship", "cancel", "refund", "mark-paid"):
        app.add_route(f"/admin/orders/{{number}}/{name}", action, suffix=name.replace("-", "_"))


TITLES = {400: "Please check your input", 403: "Not allowed", 404: "Page not found",
          409: "Not possible right now", 429: "Too many requests", 503: "The shop is closed for a moment"}  # fmt: skip


def error_page(renderer: Renderer) -> errors.PageWriter:
    """Writes the HTML error page a browser gets."""

    def write(
        req: falcon.Request, resp: falcon.Response, status: int, body: dict[str, Any]
    ) -> None:
        title = TITLES.get(status, "Something went wrong")
        lang = storefront.page_language(req)
        admin = lane_of(req.uri_template) == ADMIN_PAGES
        render(renderer, req, resp, "admin/error.html" if admin else "error.html", {
            "admin": getattr(req.context, "admin", None), "section": "error",
            "status": status, "code": body.get("code", ""), "message": body.get("message", ""),
            "title": renderer.gettext(lang, title), "request_id": body.get("request_id", ""),
            "retry_after": resp.get_header("Retry-After")}, status)  # fmt: skip

    return write


def _metrics_folder() -> str:
    """The multiprocess folder this process counts in (``ecshop serve``), or ``""``."""
    folder = multiprocess_dir()
    if folder and not multiprocess_live():
        # NOTE: prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set:
        # this process's counts stay in memory, where no scrape sees them.
        log.error("metrics: this process does not write to %s; its counts are missing "
                  "from /metrics", folder)  # fmt: skip
    announce_build("compiled" if getattr(core, "COMPILED", False) else "python")
    return folder


def create_app(config: Config | None = None, *, shop: Shop | None = None) -> ShopApp:
    """Build the WSGI app. With no arguments, configuration comes from the environment."""
    if shop is None:
        shop = build_shop(config or load_config())
    shedder = LoadShedder(shop.config.shed_queue_ms)
    shop.extras["shedder"] = shedder
    limiter = RateLimiter(*shop.config.checkout_rate_limit, shop.config.trusted_proxies,
                          exempt_token=shop.config.admin_token)  # fmt: skip
    shop.extras["limiter"] = limiter
    assets = static.StaticFiles()
    renderer = Renderer(shop.hooks, theme_dir=shop.config.theme_dir, static_url=assets.url,
                        timezone=shop.config.timezone)  # fmt: skip
    shop.extras["media"] = MediaFolder(shop.config.media_dir)
    sessions = SessionStore(shop.store, shop.config.secret_key, shop.config.session_ttl)
    shop.extras["sessions"] = sessions
    shop.extras["members"] = Members(shop.store, Throttle(shop.store))
    page_sessions = PageSessions(
        sessions, https=shop.config.base_url.startswith("https:"), max_body=shop.config.max_body
    )
    shop.extras["session_cookie"] = page_sessions.cookie
    admin_sessions = SessionStore(shop.store, shop.config.secret_key,
                                  admin_pages.ADMIN_SESSION_TTL, kind="admin")  # fmt: skip
    shop.extras["admin_sessions"] = admin_sessions
    shop.extras["admins"] = AdminUsers(shop.store, Throttle(shop.store))
    admin_page_sessions = PageSessions(
        admin_sessions, https=shop.config.base_url.startswith("https:"),
        max_body=shop.config.max_body, name="ecshop_admin", marker="uses_admin_session",
        same_site="Strict",
    )  # fmt: skip
    # NOTE: after RequestContext, so the access line is logged under the request's id
    # (process_response runs in reverse order).
    logged = [AccessLog(shop.config)] if shop.config.access_log else []
    app = ShopApp(
        middleware=[
            RequestContext(shop.config),
            *logged,
            ResponseMetrics(),
            shedder,
            RequestGuard(shop.config),
            MaintenanceGate(MaintenanceSwitch(shop.store)),
            page_sessions,
            admin_page_sessions,
            admin_pages.AdminGate(shop.extras["admins"]),
            limiter,
            MailNudge(shop.mail),
        ]
    )
    app.req_options.strip_url_path_trailing_slash = True
    app.req_options.media_handlers[falcon.MEDIA_MULTIPART] = multipart_handler(shop.config.max_body)
    errors.install(app, error_page(renderer))
    _add_pages(app, shop, renderer)
    app.add_route("/static/{name}", assets)
    app.add_route("/media/products/{name}", media.ProductPictures(shop.extras["media"]))
    app.add_route("/api/v1/products", products.ProductList(shop))
    app.add_route("/api/v1/products/{sku}", products.ProductItem(shop))
    app.add_route("/api/v1/quote", quote.Quote(shop))
    app.add_route("/api/v1/delivery-options", quote.DeliveryOptions(shop))
    app.add_route("/api/v1/checkout", orders.Checkout(shop))
    app.add_route("/api/v1/orders/{number}", orders.OrderStatus(shop))
    app.add_route("/api/v1/orders/{number}/cancel", orders.OrderCancel(shop))
    app.add_route("/payments/{gateway}/notify", payments.Notify(shop))
    app.add_route(
        "/payments/{gateway}/return", payments.Return(shop, storefront.PageResource(shop, renderer))
    )

    app.add_route("/api/v1/admin/products", products.AdminProductList(shop))
    app.add_route("/api/v1/admin/products/{sku}", products.AdminProductItem(shop))
    app.add_route("/api/v1/admin/orders", orders.AdminOrderList(shop))
    app.add_route("/api/v1/admin/orders/{number}", orders.AdminOrderItem(shop))
    action = orders.AdminOrderAction(shop)
    for name in ("ship", "cancel", "refund", "mark-paid"):
        app.add_route(
            f"/api/v1/admin/orders/{{number}}/{name}", action, suffix=name.replace("-", "_")
        )

    from ecshop.resources import admin_stock

    admin_stock.add_routes(app, shop)

    app.add_route("/api/v1/admin/maintenance", service.MaintenanceResource(shop))
    app.add_route("/api/v1/admin/gateways", service.GatewayList(shop))
    app.add_route("/healthz", service.Health(shop))
    app.add_route("/metrics", service.Metrics(shop, _metrics_folder()))
    app.add_route("/api/openapi.json", OpenAPIResource(app.route_table))
    shop.hooks.do_action("shop_started", shop)
    app.shop = shop  # type: ignore[attr-defined]
    app.shed_early(shop.config.shed_queue_ms)
    return app
