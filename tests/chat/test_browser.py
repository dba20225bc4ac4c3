"""The web UI in a real headless Chromium against the real service.

Needs the built UI (`npm --prefix chat_service/web ci && npm --prefix chat_service/web run
build`) and Debian's chromium at /usr/bin/chromium. Set CHAT_SCREENSHOT_DIR to keep the
screenshots.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio
from chathelpers import Service, running_service
from playwright.async_api import Browser, Page, Route, async_playwright, expect

from chat_service.config import DEFAULT_WEB_DIST, Config

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def prerequisites() -> None:
    assert (DEFAULT_WEB_DIST / "index.html").is_file(), \
        "the web UI is not built: npm --prefix chat_service/web ci && " \
        "npm --prefix chat_service/web run build"
    assert Path(CHROMIUM).exists(), "Debian's chromium is not installed"


@pytest_asyncio.fixture(loop_scope="session")
async def browser(prerequisites: None) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def ui_service(config: Config) -> AsyncIterator[Service]:
    async with running_service(replace(config, web_dist_dir=DEFAULT_WEB_DIST)) as svc:
        yield svc


async def _open(browser: Browser, service: Service, viewport: dict[str, int]) -> Page:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(service.url + "/")
    return page


async def _register(page: Page, nickname: str,
                    password: str = "browser-pass") -> None:  # noqa: S107
    await page.get_by_test_id("tab-register").click()
    await page.get_by_test_id("nickname").fill(nickname)
    await page.get_by_test_id("password").fill(password)
    await page.get_by_test_id("submit").click()
    await expect(page.get_by_test_id("me")).to_have_text(nickname)


async def _send(page: Page, text: str) -> None:
    await page.get_by_test_id("composer").fill(text)
    await page.get_by_test_id("send").click()
    await expect(page.get_by_test_id("composer")).to_have_value("")


def _message(page: Page, text: str):  # type: ignore[no-untyped-def]
    return page.get_by_test_id("message").filter(has_text=text)


def _keep(shot: Path) -> None:
    target = os.environ.get("CHAT_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / shot.name)


async def test_two_users_chat_live(browser: Browser, ui_service: Service, tmp_path: Path) -> None:
    alice = await _open(browser, ui_service, DESKTOP)
    bob = await _open(browser, ui_service, PHONE)
    await _register(alice, "alice")
    await _register(bob, "Bob Phone")
    for page in (alice, bob):
        await expect(page.get_by_test_id("live-status")).to_have_text("Live")

    await _send(alice, "Hello Bob! 👋")
    await expect(_message(bob, "Hello Bob! 👋")).to_be_visible()
    await _send(bob, "Hi Alice, from my phone.\nSecond line.")
    await expect(_message(alice, "Hi Alice, from my phone.")).to_be_visible()
    await _send(alice, "A longer message to see how wrapping looks on both widths: "
                + "lorem " * 30)
    await expect(_message(bob, "A longer message")).to_be_visible()
    # Only your own messages have a delete button.
    await expect(_message(bob, "Hello Bob!").get_by_test_id("delete")).to_have_count(0)

    for page, name in ((alice, "chat-desktop.png"), (bob, "chat-phone.png")):
        await page.screenshot(path=tmp_path / name)
        _keep(tmp_path / name)

    # Alice deletes a message; it disappears on Bob's phone without a reload.
    await _message(alice, "Hello Bob!").get_by_test_id("delete").click()
    await expect(_message(alice, "Hello Bob!")).to_have_count(0)
    await expect(_message(bob, "Hello Bob!")).to_have_count(0)
    await expect(_message(bob, "Hi Alice")).to_be_visible()

    # Reloading keeps the session (localStorage) and shows the history.
    await bob.reload()
    await expect(bob.get_by_test_id("me")).to_have_text("Bob Phone")
    await expect(_message(bob, "A longer message")).to_be_visible()

    # Logging out returns to the login form.
    await bob.get_by_test_id("logout").click()
    await expect(bob.get_by_test_id("tab-login")).to_be_visible()


async def test_wrong_password_shows_error(browser: Browser, ui_service: Service,
                                          tmp_path: Path) -> None:
    await ui_service.register("carol", "carol-password")
    for viewport, name in ((DESKTOP, "login-error-desktop.png"), (PHONE, "login-error-phone.png")):
        page = await _open(browser, ui_service, viewport)
        await page.get_by_test_id("nickname").fill("carol")
        await page.get_by_test_id("password").fill("not-her-password")
        await page.get_by_test_id("submit").click()
        await expect(page.get_by_test_id("auth-error")).to_have_text("Wrong nickname or password.")
        await page.screenshot(path=tmp_path / name)
        _keep(tmp_path / name)
    # Registering a taken nickname says so.
    await page.get_by_test_id("tab-register").click()
    await page.get_by_test_id("nickname").fill("Carol")
    await page.get_by_test_id("password").fill("whatever-123")
    await page.get_by_test_id("submit").click()
    await expect(page.get_by_test_id("auth-error")).to_have_text("nickname is already taken")
    # The right password gets in.
    await page.get_by_test_id("tab-login").click()
    await page.get_by_test_id("nickname").fill("carol")
    await page.get_by_test_id("password").fill("carol-password")
    await page.get_by_test_id("submit").click()
    await expect(page.get_by_test_id("me")).to_have_text("carol")


async def test_polling_fallback_does_not_skip_lower_ids(browser: Browser,
                                                        ui_service: Service) -> None:
    page = await _open(browser, ui_service, DESKTOP)

    async def refuse_stream(route: Route) -> None:
        await route.fulfill(status=503, content_type="application/json",
                            body='{"error": "no stream", "code": "unavailable"}')

    # Event streams fail: the page must fall back to polling.
    await page.route("**/api/events*", refuse_stream)
    await _register(page, "poller")
    await expect(page.get_by_test_id("live-status")).to_have_text("Polling")
    dave = (await ui_service.register("dave"))["token"]

    # Dave's message gets a lower id than the one the poller sends right after it,
    # before the next poll: the poller's cursor must not jump past Dave's.
    reply = await ui_service.post(dave, "dave was first")
    assert reply.status == 201
    await _send(page, "poller second")
    await expect(_message(page, "poller second")).to_be_visible()
    await expect(_message(page, "dave was first")).to_be_visible(timeout=10_000)
    ids = [int(i) for i in await page.get_by_test_id("message").evaluate_all(
        "els => els.map(e => e.dataset.id)")]
    assert ids == sorted(ids)
    assert len(ids) == 2
