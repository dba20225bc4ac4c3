"""Helpers of the e2e tier: kubectl, waiting for environments, HTTP through the Ingress."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Kubectl:
    binary: str
    kubeconfig: Path

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True,
                 timeout: float = 300) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([self.binary, "--kubeconfig", str(self.kubeconfig), *args],
                             input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {res.stderr.strip()}")
        return res

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)


def wait_ready(kubectl: Kubectl, name: str, timeout: int = 300) -> dict[str, str]:
    res = kubectl("wait", "--for=condition=Ready", f"chatenv/{name}", f"--timeout={timeout}s",
                  check=False, timeout=timeout + 30)
    env = kubectl.json("get", "chatenv", name)
    assert res.returncode == 0, f"chatenv/{name} not Ready: {json.dumps(env.get('status'))}"
    return {"url": env["status"]["url"], "namespace": env["status"]["namespace"]}


def wait_until(what: str, check: Any, timeout: float = 120, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class LocalhostResolver(AbstractResolver):
    """Resolves `*.localhost` to loopback, as browsers and curl do (RFC 6761)."""

    def __init__(self) -> None:
        self._default = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if host == "localhost" or host.endswith(".localhost"):
            return [{"hostname": host, "host": "127.0.0.1", "port": port,
                     "family": socket.AF_INET, "proto": 0, "flags": socket.AI_NUMERICHOST}]
        return await self._default.resolve(host, port, family)

    async def close(self) -> None:
        await self._default.close()


def client(timeout: float = 15) -> aiohttp.ClientSession:
    """An HTTP client that reaches environments at their URLs, like a browser would."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=LocalhostResolver(), force_close=True),
        timeout=aiohttp.ClientTimeout(total=timeout))


async def register_and_post(url: str, text: str, prefix: str) -> tuple[str, int]:
    """A new user (nickname ``prefix`` + random, password "correct horse") posts ``text``
    through the Ingress: their nickname and the message's id."""
    nickname = f"{prefix}{uuid.uuid4().hex[:8]}"
    async with client(timeout=30) as http:
        async with http.post(f"{url}/api/register",
                             json={"nickname": nickname, "password": "correct horse"}) as r:
            assert r.status == 201, await r.text()
            token = (await r.json())["token"]
        async with http.post(f"{url}/api/messages", json={"text": text},
                             headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 201, await r.text()
            return nickname, int((await r.json())["id"])


def fetch(url: str, timeout: float = 15) -> tuple[int, str, bytes]:
    """GET ``url`` the way a browser would (`*.localhost` is this machine): status,
    content type, body."""
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0]
    name, _, port = host.partition(":")
    target = url
    if name == "localhost" or name.endswith(".localhost"):
        target = f"{scheme}://127.0.0.1{':' + port if port else ''}{rest[len(host):]}"
    request = urllib.request.Request(target, headers={"Host": host})  # noqa: S310 - http(s)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - http(s)
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()
