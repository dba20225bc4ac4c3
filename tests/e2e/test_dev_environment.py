"""The dev environment of deploy/examples/dev.yaml, used the way chat users use it:
through its Ingress URL, served by the pods the operator made."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from e2ehelpers import Kubectl, client
from playwright.async_api import async_playwright, expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _nick(prefix: str = "e2e") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


async def _register(http: object, url: str, nickname: str) -> str:
    async with http.post(f"{url}/api/register",  # type: ignore[attr-defined]
                         json={"nickname": nickname, "password": "correct horse"}) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["token"])


async def test_register_login_post_read_and_live_update(dev_env: dict[str, str]) -> None:
    url = dev_env["url"]
    nickname = _nick()
    async with client(timeout=30) as http:
        async with http.get(f"{url}/") as r:
            assert r.status == 200
            assert "text/html" in r.headers["Content-Type"]
        await _register(http, url, nickname)
        async with http.post(f"{url}/api/login",
                             json={"nickname": nickname, "password": "correct horse"}) as r:
            assert r.status == 200, await r.text()
            token = (await r.json())["token"]
        auth = {"Authorization": f"Bearer {token}"}

        async with http.get(f"{url}/api/events") as stream:
            assert stream.status == 200
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            text = f"hello from the e2e tier {uuid.uuid4().hex}"
            async with http.post(f"{url}/api/messages", json={"text": text}, headers=auth) as r:
                assert r.status == 201, await r.text()
                posted = await r.json()

            async def live_event() -> dict[str, object]:
                event = None
                while True:
                    line = (await stream.content.readline()).decode().rstrip("\n")
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: ") and event == "message.created":
                        data: dict[str, object] = json.loads(line.removeprefix("data: "))
                        if data["id"] == posted["id"]:
                            return data

            received = await asyncio.wait_for(live_event(), timeout=15)
        assert received["text"] == text
        assert received["nickname"] == nickname

        async with http.get(f"{url}/api/messages", params={"limit": "50"}) as r:
            assert r.status == 200
            messages = await r.json()
        assert posted["id"] in [m["id"] for m in messages]


@pytest.mark.browser
async def test_web_ui_through_the_ingress(dev_env: dict[str, str], tmp_path: Path) -> None:
    assert await asyncio.to_thread(Path(CHROMIUM).exists), "Debian's chromium is not installed"
    nickname, text = _nick("ui"), f"typed in chromium {uuid.uuid4().hex[:8]}"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            # Chromium resolves *.localhost to this machine by itself: the URL as printed.
            await page.goto(f"{dev_env['url']}/")
            await page.get_by_test_id("tab-register").click()
            await page.get_by_test_id("nickname").fill(nickname)
            await page.get_by_test_id("password").fill("correct horse")
            await page.get_by_test_id("submit").click()
            await expect(page.get_by_test_id("me")).to_have_text(nickname, timeout=20_000)
            await expect(page.get_by_test_id("live-status")).to_have_text("Live", timeout=20_000)
            await page.get_by_test_id("composer").fill(text)
            await page.get_by_test_id("send").click()
            message = page.get_by_test_id("message").filter(has_text=text)
            await expect(message).to_have_count(1, timeout=20_000)
            await page.screenshot(path=str(tmp_path / "chat.png"))
        finally:
            await browser.close()


async def test_requests_show_up_in_jaeger(dev_env: dict[str, str]) -> None:
    """A request carrying a W3C trace context is found in the environment's Jaeger by its
    trace id, with the chat service's server span."""
    url = dev_env["url"]
    trace_id = uuid.uuid4().hex
    headers = {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}
    async with client() as http:
        async with http.get(f"{url}/api/messages", params={"limit": "3"}, headers=headers) as r:
            assert r.status == 200
        started = time.monotonic()
        while True:
            async with http.get(f"{url}/jaeger/api/traces/{trace_id}") as r:
                if r.status == 200:
                    spans = [s for t in (await r.json())["data"] for s in t["spans"]]
                    if any(s["operationName"].startswith("GET /api/messages") for s in spans):
                        break
            assert time.monotonic() - started < 60, f"trace {trace_id} is not in Jaeger"
            await asyncio.sleep(1)
    # Bounded: the span processor exports within seconds, and Jaeger serves it at once.
    assert time.monotonic() - started < 30


def test_secrets_open_the_databases_and_wrong_ones_are_refused(
        dev_env: dict[str, str], kubectl: Kubectl) -> None:
    ns = dev_env["namespace"]
    # The chat pods are Ready: their readiness probe checks PostgreSQL and Redis with the
    # generated passwords.
    ready = kubectl.json("get", "deployment", "chat", "-n", ns)["status"]
    assert ready.get("readyReplicas", 0) >= 1
    password = kubectl("get", "secret", "postgres-credentials", "-n", ns, "-o",
                       "jsonpath={.data.password}").stdout
    import base64

    secret = base64.b64decode(password).decode()
    ok = kubectl("exec", "-n", ns, "postgres-0", "--", "psql",
                 f"postgresql://chat:{secret}@127.0.0.1/chat", "-tAc", "select 1", check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "1"
    wrong = kubectl("exec", "-n", ns, "postgres-0", "--", "psql",
                    "postgresql://chat:not-the-password@127.0.0.1/chat", "-tAc", "select 1",
                    check=False)
    assert wrong.returncode != 0
    assert "password authentication failed" in wrong.stderr

    redis_ok = kubectl("exec", "-n", ns, "deploy/redis", "--", "redis-cli", "-h", "127.0.0.1",
                       "ping", check=False)
    assert redis_ok.stdout.strip() == "PONG", redis_ok.stderr
    redis_wrong = kubectl("exec", "-n", ns, "deploy/redis", "--", "env", "REDISCLI_AUTH=nope",
                          "redis-cli", "-h", "127.0.0.1", "ping", check=False)
    assert "WRONGPASS" in redis_wrong.stdout + redis_wrong.stderr
    anonymous = kubectl("exec", "-n", ns, "deploy/redis", "--", "env", "-u", "REDISCLI_AUTH",
                        "redis-cli", "-h", "127.0.0.1", "ping", check=False)
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr


def test_pods_run_as_their_non_root_users(dev_env: dict[str, str], kubectl: Kubectl) -> None:
    ns = dev_env["namespace"]
    for target, uid in (("postgres-0", "70"), ("deploy/redis", "999"), ("deploy/chat", "10001"),
                        ("deploy/jaeger", "10001")):
        if target == "deploy/jaeger":
            # No shell tools needed: the kernel's view of the main process.
            res = kubectl("exec", "-n", ns, target, "--", "cat", "/proc/1/status", check=False)
            uids = [line.split()[1] for line in res.stdout.splitlines()
                    if line.startswith("Uid:")]
            assert uids == [uid], res.stdout + res.stderr
            continue
        res = kubectl("exec", "-n", ns, target, "--", "id", "-u", check=False)
        assert res.stdout.strip() == uid, f"{target}: {res.stdout}{res.stderr}"
