"""Driving a real headless Chromium in the end-to-end tests: the system chromium and
chromedriver, a desktop window or a 390×844 phone, full-page screenshots into
``test-artifacts/screenshots/`` (git-ignored) and the no-sideways-scrolling check.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``./scripts/test.sh``
installs them); without them the tests skip, or fail under ``ECSHOP_REQUIRE_SERVICES=1``.
The ``device`` and ``browser`` fixtures are in ``tests/e2e/conftest.py``.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.conftest import _unavailable

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    HAVE_SELENIUM = True
except ImportError:  # the browser fixture says what to install
    HAVE_SELENIUM = False

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--lang=en-US",
)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP, PHONE = "desktop", "phone"
#: a phone's screen: 390×844 CSS pixels at 3x, with a phone's user agent
PHONE_METRICS = {"width": 390, "height": 844, "pixelRatio": 3.0, "mobile": True}
PHONE_AGENT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
               "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")  # fmt: skip


def require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        _unavailable(
            f"{' and '.join(missing)} not found: install the Debian packages chromium and "
            "chromium-driver (./scripts/test.sh does)"
        )
    if not HAVE_SELENIUM:
        _unavailable("selenium is not installed: pip install 'ecshop[test]'")


def chromium(tmp_path: Path, device: str) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    size = "--window-size=1280,900" if device == DESKTOP else "--window-size=390,844"
    for arg in (*CHROMIUM_ARGS, size, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    if device == PHONE:
        options.add_experimental_option(
            "mobileEmulation", {"deviceMetrics": PHONE_METRICS, "userAgent": PHONE_AGENT}
        )
    # An explicit driver path keeps selenium-manager from looking for (or downloading) one.
    service = Service(str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    return driver


def shot(browser: WebDriver, name: str) -> Path:
    """A screenshot of the whole page (beyond the viewport) in the artifacts folder."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1}
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path = SCREENSHOTS / f"{browser.device}-{name}.png"  # type: ignore[attr-defined]
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def page(browser: WebDriver, name: str) -> None:
    """This shop page fits the screen's width (no sideways scrolling); screenshot it."""
    width = browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert width[0] <= width[1], f"{name} scrolls sideways: {width}"
    shot(browser, name)


def flash(browser: WebDriver) -> str:
    """The page's flash messages; "" while the page is being replaced (poll it).

    One script reads them all, so no element handle can outlive its page between
    finding it and reading its text (Chromium then fails with "node does not belong
    to the document", not only with a stale reference)."""
    from selenium.common.exceptions import WebDriverException

    try:
        text = browser.execute_script(
            "return Array.from(document.querySelectorAll('.flash'), e => e.innerText).join(' ')"
        )
    except WebDriverException:
        return ""
    return str(text or "")


def _retrying(action: Any, timeout: float = 10.0) -> None:
    """Run ``action`` until it works: right after a navigation the old page's element
    may be found and then go stale, or the new one may not be there yet."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        WebDriverException,
    )

    deadline = time.monotonic() + timeout
    while True:
        try:
            action()
            return
        except (StaleElementReferenceException, NoSuchElementException):
            if time.monotonic() > deadline:
                raise
        except WebDriverException as exc:
            # Chromium's word for a handle whose page was replaced mid-command.
            if "does not belong to the document" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def type_into(browser: WebDriver, field_id: str, value: str) -> None:
    """Replace the text of the field ``field_id`` with ``value``."""

    def act() -> None:
        box = browser.find_element(By.ID, field_id)
        box.clear()
        box.send_keys(value)

    _retrying(act)


def press(browser: WebDriver, element_id: str) -> None:
    """Click the element ``element_id`` of the page now shown."""
    _retrying(lambda: browser.find_element(By.ID, element_id).click())
