"""Server-rendered pages: Jinja2 templates (autoescaped), a theme folder that overrides
them, Japanese and English through gettext catalogs, and the ``storefront_context``
filter on every page's context.

The catalogs are the ``.po`` files in ``ecshop/locale/<lang>/LC_MESSAGES/``, compiled in
memory when the shop starts, so there is no build step. The message ids are English:
English needs no catalog.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from ecshop.money import format_money
from ecshop.pages import template_context

TEMPLATES = Path(__file__).resolve().parent / "templates"
LOCALES = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"


def load_translations(lang: str, folder: Path = LOCALES) -> NullTranslations:
    """The catalog of ``lang`` read from its ``.po`` file (none for English)."""
    po = folder / lang / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return NullTranslations()
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def negotiate(accept_language: str | None, cookie: str | None) -> str:
    """The page language: the ``lang`` cookie, else the best of ``Accept-Language``."""
    if cookie in LANGUAGES:
        return str(cookie)
    ranked = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        ranked.append((-weight, position, tag.split("-")[0].lower()))
    for _, _, lang in sorted(ranked):
        if lang in LANGUAGES:
            return lang
    return DEFAULT_LANGUAGE


class Renderer:
    """Renders the shop's templates in each language (one Jinja environment per
    language, so threads never swap each other's catalog)."""

    def __init__(self, hooks: Any, *, theme_dir: str = "", static_url: Any = None,
                 timezone: str = "Asia/Tokyo") -> None:  # fmt: skip
        self.hooks = hooks
        self.zone = ZoneInfo(timezone)
        folders = [str(Path(theme_dir))] if theme_dir else []
        loader = jinja2.FileSystemLoader([*folders, str(TEMPLATES)])
        self.translations = {lang: load_translations(lang) for lang in LANGUAGES}
        self.envs = {lang: self._env(loader, lang, static_url) for lang in LANGUAGES}

    def _env(self, loader: jinja2.BaseLoader, lang: str, static_url: Any) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=loader, autoescape=True, extensions=["jinja2.ext.i18n"],
            trim_blocks=True, lstrip_blocks=True,
        )  # fmt: skip
        env.install_gettext_translations(self.translations[lang], newstyle=True)  # type: ignore[attr-defined]
        env.filters["money"] = format_money
        env.filters["when"] = self.when
        env.globals["static"] = static_url or (lambda name: f"/static/{name}")
        env.globals["lang"] = lang
        return env

    def when(self, value: Any, with_time: bool = True) -> str:
        """A moment (epoch seconds or an ISO 8601 string) in the shop's time zone:
        ``2026-12-06 02:46 JST``, or the date alone."""
        if value in (None, ""):
            return ""
        if isinstance(value, str):
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            moment = dt.datetime.fromtimestamp(float(value), dt.UTC)
        local = moment.astimezone(self.zone)
        return local.strftime("%Y-%m-%d %H:%M %Z" if with_time else "%Y-%m-%d")

    def gettext(self, lang: str, message: str, **values: Any) -> str:
        """``message`` in ``lang``, with ``%(name)s`` values filled in."""
        text = self.translations.get(lang, NullTranslations()).gettext(message)
        return text % values if values else text

    def render(self, template: str, context: Mapping[str, Any], lang: str) -> str:
        """The page ``template`` with ``context`` after the ``storefront_context`` filter."""
        values = template_context(self.hooks, template, {**context, "lang": lang})
        return (
            self.envs.get(lang, self.envs[DEFAULT_LANGUAGE]).get_template(template).render(values)
        )
