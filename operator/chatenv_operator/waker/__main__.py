"""``python -m chatenv_operator.waker``: run the waker (the operator's image, another command).

Settings from the environment: CHATENV_WAKER_HTTP_PORT (8080, what the Ingresses send to),
CHATENV_WAKER_HEALTH_PORT (8081, ``/healthz``), CHATENV_LOG_FORMAT (json|text),
CHATENV_LOG_LEVEL (INFO). A bad value stops it with a message naming the variable. (Not
CHATENV_WAKER_PORT: Kubernetes sets that one in pods, for the Service of that name.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping

from aiohttp import web

from .. import logs
from .directory import Directory, KubeApi
from .serving import create_app, create_health_app

log = logging.getLogger("chatenv.waker")


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip() or str(default)
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise SystemExit(f"error: {name} must be a port number 1-65535, got {raw!r}")
    return int(raw)


async def serve(directory: Directory, port: int, health_port: int) -> None:
    """Both servers until SIGTERM or SIGINT."""
    runners = [web.AppRunner(create_app(directory), access_log=None),
               web.AppRunner(create_health_app(directory), access_log=None)]
    for runner, where in zip(runners, (port, health_port), strict=True):
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", where).start()  # noqa: S104 - a Pod's port
    log.info("waker listening on :%d (health :%d)", port, health_port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    for runner in runners:
        await runner.cleanup()


def ports(env: Mapping[str, str]) -> tuple[int, int]:
    """(the port the Ingresses send to, the probes' port)."""
    return (_port(env, "CHATENV_WAKER_HTTP_PORT", 8080),
            _port(env, "CHATENV_WAKER_HEALTH_PORT", 8081))


def main(env: Mapping[str, str]) -> int:
    port, health_port = ports(env)
    logs.configure(env.get("CHATENV_LOG_FORMAT", "json"), env.get("CHATENV_LOG_LEVEL", "INFO"))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    directory = Directory(KubeApi())
    stop = threading.Event()
    threading.Thread(target=directory.run, args=(stop,), name="watch", daemon=True).start()
    try:
        asyncio.run(serve(directory, port, health_port))
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main(os.environ))
