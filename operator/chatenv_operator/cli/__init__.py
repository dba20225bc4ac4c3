"""`chatenv`: DevSlots from GitHub Actions or a terminal, through the Kubernetes API.

    chatenv ensure-slot  --issue N | --pr N [--mode dev|plan|repair] [--repository R] ...
    chatenv ensure-ready --issue N | --pr N [--timeout 20m] [--soft-fail] ...
    chatenv set          --slot S --pr N [--repository R]
    chatenv touch        --issue N | --pr N | --slot S [--repository R]
    chatenv cleanup      --issue N | --pr N [--repository R]
    chatenv list         [--json] [--repository R]
    chatenv comment      --issue N | --pr N | --slot S [--lang en|ru]
    chatenv render       --issue N | --pr N ...    (offline: the DevSlot it would create)

Commands that a workflow reads print one JSON object on stdout, with the
original CLI's field names (slot, namespace, env, created, infraReady). Errors
and notes go to stderr; the exit code says what happened (``errors.EXIT_CODES``).

Modules: ``args`` (the command line and every check that needs no cluster),
``output`` (pure: manifests, summaries, comments, tables), ``actions`` (the
requests each command makes), ``main`` (the entry point).
"""

from .main import main

__all__ = ["main"]
