#!/usr/bin/env python3
"""Run the chat service on this machine, on real PostgreSQL and Redis, to use it by hand.

    hack/local_chat.py start [--port 8080]    # prints the URL
    hack/local_chat.py stop

The local control plane's pods are kwok's and run nothing, so hack/up also starts
the service itself on loopback: PostgreSQL and Redis from Debian's packages (in a
temporary directory), `python -m chat_service migrate`, then `serve` with the web
UI. `stop` ends all three and removes their data.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HACK = Path(__file__).resolve().parent
ROOT = HACK.parent
sys.path.insert(0, str(HACK))

from servers import PostgresServer, RedisServer, free_port  # noqa: E402

STATE = Path(tempfile.gettempdir()) / "chatenv-local-chat"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def start(port: int) -> int:
    record = STATE / "state.json"
    if record.exists() and _alive(json.loads(record.read_text())["pids"]["chat"]):
        print(json.loads(record.read_text())["url"])
        return 0
    STATE.mkdir(parents=True, exist_ok=True)
    postgres, redis = PostgresServer(), RedisServer()
    postgres.init()
    redis.start()
    env = {**os.environ, **postgres.env, **redis.env, "HTTP_HOST": "127.0.0.1",
           "HTTP_PORT": str(port), "LOG_LEVEL": "WARNING", "OTEL_SERVICE_NAME": "chat-local"}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    subprocess.run([sys.executable, "-m", "chat_service", "migrate"], env=env, check=True,
                   cwd=ROOT, capture_output=True)
    with open(STATE / "chat.log", "ab") as log:
        chat = subprocess.Popen([sys.executable, "-m", "chat_service", "serve"], env=env,
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    record.write_text(json.dumps({
        "url": url,
        "pids": {"chat": chat.pid, "postgres": postgres.pid, "redis": redis.pid},
        "dirs": [str(postgres.root), str(redis.root)],
    }))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if chat.poll() is not None:
            print((STATE / "chat.log").read_text()[-2000:], file=sys.stderr)
            stop()
            return 1
        with contextlib.suppress(OSError), urllib.request.urlopen(  # noqa: S310 - loopback http
                f"{url}health/readyz", timeout=2):
            print(url)
            return 0
        time.sleep(0.3)
    print("the chat service did not become ready within 30 s", file=sys.stderr)
    stop()
    return 1


def stop() -> int:
    record = STATE / "state.json"
    if not record.exists():
        return 0
    data = json.loads(record.read_text())
    # The service first, then its data stores; PostgreSQL takes SIGINT for a fast shutdown.
    for name, sig in (("chat", signal.SIGTERM), ("postgres", signal.SIGINT),
                      ("redis", signal.SIGTERM)):
        pid = data["pids"][name]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        for _ in range(100):
            if not _alive(pid):
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for directory in data["dirs"]:
        shutil.rmtree(directory, ignore_errors=True)
    record.unlink()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument("--port", type=int, default=0, help="default: 8080 if free, else any")
    args = parser.parse_args()
    if args.command == "stop":
        return stop()
    port = args.port
    if not port:
        import socket

        with socket.socket() as s:
            port = 8080 if s.connect_ex(("127.0.0.1", 8080)) != 0 else free_port()
    return start(port)


if __name__ == "__main__":
    sys.exit(main())
