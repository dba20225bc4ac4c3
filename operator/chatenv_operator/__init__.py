"""chatenv's Kubernetes operator: ChatEnvironments and DevSlots.

Layers, top to bottom (a module may import only from the layers below it):

- ``handlers``     kopf registrations only: they feed the work queue.
- ``runtime``, ``metrics``  one operator process: its controllers, /metrics.
- ``controller``   the work queue and the reconcile loops (I/O).
- ``reconcile``, ``reporting``, ``slots``, ``agents``, ``sweep``  one pass over one
  object: read, apply, report status and Events.
- ``kube``         the only module that talks to the Kubernetes API.
- ``builders``, ``environment``, ``config``, ``conditions``  pure data:
  configuration and specs in, manifests and statuses out; no I/O.
- ``logs``         structured log lines (JSON), with the object a line is about.

``cli`` (the `chatenv` command) uses ``kube`` and the pure layers only.

The importable name is ``chatenv_operator``: the folder ``operator/`` keeps
the project's layout, and Python's standard library owns ``operator``.
"""
