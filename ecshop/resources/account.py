"""Member pages: register, log in and out, the account page (order history and the saved
address) and password reset by a mailed link.

Logging in (and registering) gives the session a new id (:meth:`SessionStore.cycle`), so
an id planted before login opens nothing after it; logging out deletes the session. A
login is throttled per account and per client address (:mod:`ecshop.throttle`); the
page then answers 429 with ``Retry-After``. Every form carries the session's CSRF token
(:mod:`ecshop.resources._page`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import falcon

from ecshop.errors import ValidationError
from ecshop.members import EmailTaken, LoginFailed, ResetLinkInvalid
from ecshop.pages import ADDRESS_FIELDS, STATUS_LABELS, check_form, checkout_fields
from ecshop.resources._declare import declare, query
from ecshop.resources._page import (
    FORM,
    HTML_ANSWER,
    SEE_OTHER,
    local_path,
    page_language,
    see_other,
)
from ecshop.resources.ratelimit import client_address
from ecshop.resources.storefront import PageResource
from ecshop.throttle import LoginThrottled

NEXT = query("next", {"type": "string", "maxLength": 2000}, description="where to go after")
TOKEN_PARAM = query("token", {"type": "string", "maxLength": 200}, description="the mailed token")


def address_fields(hooks: Any) -> list[dict[str, Any]]:
    """The checkout form's fields a member keeps (all but the email, which is the
    account's own)."""
    return [f for f in checkout_fields(hooks) if f["name"] != "email"]


class AccountPage(PageResource):
    """What the member pages share."""

    def members(self) -> Any:
        return self.shop.extras["members"]

    def member(self, req: falcon.Request) -> dict[str, Any] | None:
        return self.members().get(req.context.session.member_id)

    def log_in(self, req: falcon.Request, member_id: str) -> None:
        """The session gets a new id and the member (the cart stays)."""
        sessions = self.shop.extras["sessions"]
        session = req.context.session
        session.member_id = member_id
        req.context.session = sessions.cycle(session)

    def login_redirect(self, req: falcon.Request, resp: falcon.Response) -> None:
        see_other(resp, "/account/login?" + urlencode({"next": req.relative_uri}))


class Login(AccountPage):
    """``GET /account/login``, ``POST /account/login``, ``POST /account/logout``."""

    @declare(params=(NEXT,), answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The login form."""
        self.render(req, resp, "login.html", {"email": "", "error": "",
                                              "next": local_path(req.context.params["next"], "/account")})  # fmt: skip

    @declare(raw_body=FORM, answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Log in and go on (to ``next``), or show the form again with what went wrong."""
        form = req.context.form
        email, password = form.get("email", "")[:320], form.get("password", "")
        target = local_path(form.get("next"), "/account")
        client = client_address(req, self.shop.extras["limiter"].trusted)
        try:
            member = self.members().authenticate(email, password, client)
        except LoginThrottled as exc:
            self.render(req, resp, "login.html", {"email": email, "next": target,
                                                  "error": self.tr(req, "Too many failed logins: please wait 15 minutes and try again.")},
                        429)  # fmt: skip
            resp.set_header("Retry-After", str(exc.retry_after))
            return
        except LoginFailed:
            self.render(req, resp, "login.html", {"email": email, "next": target,
                                                  "error": self.tr(req, "The email address or password is wrong.")},
                        401)  # fmt: skip
            return
        self.log_in(req, member["id"])
        req.context.session.flash(self.tr(req, "You are logged in."))
        see_other(resp, target)

    @declare(raw_body=FORM, answers=(SEE_OTHER,), page=True)
    def on_post_logout(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Log out: the session and its cart are gone."""
        sessions = self.shop.extras["sessions"]
        sessions.end(req.context.session)
        req.context.session = sessions.new()
        req.context.session.flash(self.tr(req, "You are logged out."))
        see_other(resp, "/")


class Register(AccountPage):
    """``GET /account/register``, ``POST /account/register``."""

    def show(self, req: falcon.Request, resp: falcon.Response, form: dict[str, str],
             errors: dict[str, str], status: int = 200) -> None:  # fmt: skip
        self.render(req, resp, "register.html", {"form": form, "errors": errors,
                                                 "next": local_path(form.get("next"), "/account")},
                    status)  # fmt: skip

    @declare(params=(NEXT,), answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The registration form."""
        self.show(req, resp, {"next": req.context.params["next"] or ""}, {})

    @declare(raw_body=FORM, answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Make the account and log it in."""
        form = {
            k: req.context.form.get(k, "")[:1100] for k in ("email", "name", "password", "next")
        }
        try:
            member = self.members().register(form["email"], form["password"], form["name"])
        except (ValidationError, EmailTaken) as exc:
            field = str(exc.details.get("field", "email"))
            form.pop("password")
            self.show(req, resp, form, {field: self.tr(req, exc.message)}, exc.status)
            return
        self.log_in(req, member["id"])
        req.context.session.flash(self.tr(req, "Welcome! Your account was made."))
        see_other(resp, local_path(form["next"], "/account"))


class Account(AccountPage):
    """``GET /account``, ``GET /account/address``, ``POST /account/address``."""

    @declare(answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The member's orders, newest first, and the saved address."""
        member = self.member(req)
        if member is None:
            self.login_redirect(req, resp)
            return
        orders = self.members().orders(member["id"])
        for order in orders:
            order["link"] = f"/orders/{quote(order['number'])}"
        self.render(req, resp, "account.html", {"member": member, "orders": orders,
                                                "status_labels": STATUS_LABELS})  # fmt: skip

    def show_address(self, req: falcon.Request, resp: falcon.Response, form: dict[str, str],
                     errors: dict[str, str], status: int = 200) -> None:  # fmt: skip
        self.render(req, resp, "address.html", {
            "fields": address_fields(self.shop.hooks), "form": form,
            "errors": {k: self.tr(req, v) for k, v in errors.items()}}, status)  # fmt: skip

    @declare(answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_get_address(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The saved address's form."""
        member = self.member(req)
        if member is None:
            self.login_redirect(req, resp)
            return
        self.show_address(req, resp, {"name": member["name"], **member["address"]}, {})

    @declare(raw_body=FORM, answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_post_address(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Keep the address for the next checkout."""
        member = self.member(req)
        if member is None:
            self.login_redirect(req, resp)
            return
        fields = address_fields(self.shop.hooks)
        form = {f["name"]: req.context.form.get(f["name"], "").strip()[:1000] for f in fields}
        errors = check_form(fields, form)
        if errors:
            self.show_address(req, resp, form, errors, 400)
            return
        self.members().save_address(member["id"], form)
        req.context.session.flash(self.tr(req, "Your address was saved."))
        see_other(resp, "/account")


def saved_checkout_form(member: dict[str, Any]) -> dict[str, str]:
    """The checkout form filled from a member's account."""
    form = {"email": member["email"], "name": member["name"]}
    form.update({k: str(v) for k, v in member["address"].items()
                 if k in ADDRESS_FIELDS or k not in form})  # fmt: skip
    return form


class PasswordReset(AccountPage):
    """``GET|POST /account/reset`` (ask for a link), ``GET|POST /account/reset/new`` (use it)."""

    @declare(answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The form asking for a reset link."""
        self.render(req, resp, "reset_request.html", {"sent": False})

    @declare(raw_body=FORM, answers=(HTML_ANSWER,), page=True)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Mail a link when the address has an account; the page says the same either way."""
        email = req.context.form.get("email", "")[:320]
        base = self.shop.config.base_url.rstrip("/")
        self.members().start_reset(
            email, lambda token: f"{base}/account/reset/new?" + urlencode({"token": token}),
            page_language(req),
        )  # fmt: skip
        self.render(req, resp, "reset_request.html", {"sent": True, "email": email})

    @declare(params=(TOKEN_PARAM,), answers=(HTML_ANSWER,), page=True)
    def on_get_new(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The new-password form of a reset link (a dead link says so)."""
        token = req.context.params["token"] or ""
        live = self.members().reset_member(token) is not None
        self.render(req, resp, "reset_new.html", {"token": token if live else "", "error": ""},
                    200 if live else 400)  # fmt: skip

    @declare(raw_body=FORM, answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_post_new(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Set the new password; the member logs in with it."""
        token = req.context.form.get("token", "")[:200]
        try:
            self.members().finish_reset(token, req.context.form.get("password", ""))
        except ValidationError as exc:
            self.render(
                req,
                resp,
                "reset_new.html",
                {"token": token, "error": self.tr(req, exc.message)},
                400,
            )
            return
        except ResetLinkInvalid:
            self.render(req, resp, "reset_new.html", {"token": "", "error": ""}, 400)
            return
        req.context.session.flash(self.tr(req, "Your password was changed: log in with it."))
        see_other(resp, "/account/login")
