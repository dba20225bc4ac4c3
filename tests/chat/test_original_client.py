"""The original web client's calls, exactly as it made them, from headless Chromium.

The original Vue client (its Pinia store) is not part of this project; these are its
requests, restated: `POST /api/register` and `POST /api/login` with
`Content-Type: application/json`; `GET /api/messages?` (no parameters) after login, then
`GET /api/messages?after_id=<last id>` every 3 s, without a token; `POST /api/messages`
with the bearer token, after which it set its cursor to the posted id. On a failure it
read `data.error` as a string, showed it, and threw `new Error(data.error)`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from chathelpers import Service, running_service
from playwright.async_api import Browser, Page, async_playwright

from chat_service.config import Config

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# The original client's store, restated as a plain object on `window.original`.
CLIENT = """
window.original = {
  token: null, userId: null, nickname: "", messages: [], lastMessageId: 0, error: null,
  shown: [],
  fail(data, fallback) {
    this.error = data.error || fallback;
    this.shown.push(String(this.error));
    throw new Error(this.error);
  },
  async register(nickname, password) {
    this.error = null;
    const resp = await fetch("/api/register", {method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({nickname, password})});
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) this.fail(data, "Registration failed");
    return data;
  },
  async login(nickname, password) {
    this.error = null;
    const resp = await fetch("/api/login", {method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({nickname, password})});
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) this.fail(data, "Login failed");
    this.token = data.token; this.userId = data.userId; this.nickname = data.nickname;
    return data;
  },
  async fetchMessages() {
    const params = new URLSearchParams();
    if (this.lastMessageId) params.set("after_id", String(this.lastMessageId));
    const resp = await fetch(`/api/messages?${params.toString()}`);
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) this.fail(data, "Failed to load messages");
    if (Array.isArray(data) && data.length > 0) {
      this.messages.push(...data);
      this.lastMessageId = data[data.length - 1].id;
    }
  },
  async sendMessage(text) {
    const resp = await fetch("/api/messages", {method: "POST",
      headers: {"Content-Type": "application/json", Authorization: `Bearer ${this.token}`},
      body: JSON.stringify({text})});
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) this.fail(data, "Failed to send message");
    this.messages.push(data);
    this.lastMessageId = data.id;
  },
  startPolling() {
    setInterval(async () => { try { await this.fetchMessages(); } catch {} }, 3000);
  },
};
"""


@pytest_asyncio.fixture(loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        await browser.close()


async def _client(browser: Browser, service: Service,
                  requests: list[tuple[str, str, dict[str, str]]]) -> Page:
    page = await (await browser.new_context()).new_page()
    page.on("request", lambda r: requests.append((r.method, r.url.removeprefix(service.url),
                                                   r.headers)) if "/api/" in r.url else None)
    # Any page of the service's origin will do: the client uses relative URLs.
    await page.goto(service.url + "/health/livez")
    await page.evaluate(CLIENT)
    return page


async def _call(page: Page, script: str) -> Any:
    """Run `script` against window.original; a thrown Error comes back as its message."""
    return await page.evaluate(
        f"async () => {{ const o = window.original; try {{ return await ({script}); }} "
        "catch (e) { return {thrown: String(e.message)}; } }")


async def test_original_client_calls_work_unchanged(browser: Browser, config: Config) -> None:
    requests: list[tuple[str, str, dict[str, str]]] = []
    async with running_service(config) as service:
        page = await _client(browser, service, requests)

        # Errors read as text: never raw JSON, never "[object Object]".
        short = await _call(page, 'o.register("anna", "short")')
        assert short == {"thrown": "password must be 8-256 characters"}
        created = await _call(page, 'o.register("anna", "anna-password")')
        assert created["nickname"] == "anna"
        assert isinstance(created["id"], int)
        taken = await _call(page, 'o.register("anna", "anna-password")')
        assert taken == {"thrown": "nickname is already taken"}
        empty = await _call(page, 'o.register("", "anna-password")')
        assert empty == {"thrown": "nickname must not be empty"}
        wrong = await _call(page, 'o.login("anna", "not-her-password")')
        assert wrong == {"thrown": "invalid credentials"}

        # Someone else has already written; the client logs in and loads the page.
        other = (await service.register("boris"))["token"]
        first = (await service.post(other, "hello before anna came")).body["id"]
        session = await _call(page, 'o.login("anna", "anna-password")')
        assert session["nickname"] == "anna"
        assert session["userId"] == created["id"]
        await _call(page, "o.fetchMessages()")
        assert await page.evaluate("window.original.messages.map(m => m.id)") == [first]

        # Polling every 3 s picks up what others write.
        await page.evaluate("window.original.startPolling()")
        second = (await service.post(other, "anna, are you there?")).body["id"]
        await page.wait_for_function(
            f"window.original.messages.some(m => m.id === {second})", timeout=10_000)

        # Sending works (the token is sent as it was), and the list goes on.
        sent = await _call(page, 'o.sendMessage("  yes, here  ")')
        assert sent is None
        mine = await page.evaluate("window.original.messages.at(-1)")
        assert mine["text"] == "yes, here"
        assert mine["nickname"] == "anna"
        third = (await service.post(other, "great")).body["id"]
        await page.wait_for_function(
            f"window.original.messages.some(m => m.id === {third})", timeout=10_000)
        texts = await page.evaluate("window.original.messages.map(m => m.text)")
        assert texts == ["hello before anna came", "anna, are you there?", "yes, here", "great"]
        assert await page.evaluate("window.original.shown") == [
            "password must be 8-256 characters", "nickname is already taken",
            "nickname must not be empty", "invalid credentials"]

        # An expired session reads as text too.
        await page.evaluate('window.original.token = "0".repeat(64)')
        expired = await _call(page, 'o.sendMessage("after expiry")')
        assert expired == {"thrown": "invalid or expired token"}

    # The requests were the original's, byte for byte where it matters.
    paths = [path for method, path, _ in requests if method == "GET"]
    assert paths[0] == "/api/messages?"
    polls = paths[1:]
    assert polls
    assert all(re.fullmatch(r"/api/messages\?after_id=\d+", p) for p in polls), polls
    posts = [(path, headers) for method, path, headers in requests if method == "POST"]
    assert {path for path, _ in posts} == {"/api/register", "/api/login", "/api/messages"}
    assert all(h.get("content-type") == "application/json" for _, h in posts)
