"""A small Prometheus endpoint: API requests by verb, reconciles, queue depth."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from .controller import Controller
from .kube import Kube


def exposition(kube: Kube, controllers: Iterable[Controller]) -> str:
    lines = [
        "# HELP chatenv_api_requests_total Kubernetes API requests sent by the operator.",
        "# TYPE chatenv_api_requests_total counter",
    ]
    for verb, count in sorted(kube.counter.snapshot().items()):
        lines.append(f'chatenv_api_requests_total{{verb="{verb}"}} {count}')
    lines += [
        "# HELP chatenv_reconciles_total Reconcile passes, by controller.",
        "# TYPE chatenv_reconciles_total counter",
    ]
    controllers = list(controllers)
    for c in controllers:
        lines.append(f'chatenv_reconciles_total{{controller="{c.name}"}} {c.stats.reconciles}')
    lines += ["# HELP chatenv_object_reconciles_total Reconcile passes per live object.",
              "# TYPE chatenv_object_reconciles_total counter"]
    for c in controllers:
        for key, count in sorted(c.stats.by_key.items()):
            lines.append(f'chatenv_object_reconciles_total{{controller="{c.name}",'
                         f'name="{key}"}} {count}')
    lines += ["# HELP chatenv_reconcile_failures_total Failed reconcile passes.",
              "# TYPE chatenv_reconcile_failures_total counter"]
    for c in controllers:
        lines.append(f'chatenv_reconcile_failures_total{{controller="{c.name}"}} '
                     f"{c.stats.failures}")
    lines += ["# HELP chatenv_reconcile_seconds_total Time spent reconciling.",
              "# TYPE chatenv_reconcile_seconds_total counter"]
    for c in controllers:
        lines.append(f'chatenv_reconcile_seconds_total{{controller="{c.name}"}} '
                     f"{c.stats.seconds:.6f}")
    lines += ["# HELP chatenv_queue_depth Keys queued or being reconciled.",
              "# TYPE chatenv_queue_depth gauge"]
    for c in controllers:
        lines.append(f'chatenv_queue_depth{{controller="{c.name}"}} {c.depth}')
    return "\n".join(lines) + "\n"


async def serve(kube: Kube, controllers: list[Controller], port: int) -> web.AppRunner:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=exposition(kube, controllers),
                            content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()  # noqa: S104 - scraped from the cluster
    return runner
