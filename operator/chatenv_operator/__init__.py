"""chatenv's Kubernetes operator: ChatEnvironments and DevSlots.

Layers, top to bottom (a module may import only from the layers below it):

- ``handlers``     kopf registrations only: they feed the work queue.
- ``controller``   the work queue and the reconcile loops (I/O).
- ``reconcile``, ``slots``  one pass over one object: read, apply, report status.
- ``kube``         the only module that talks to the Kubernetes API.
- ``builders``, ``environment``, ``config``, ``conditions``  pure data:
  configuration and specs in, manifests and statuses out; no I/O.

The importable name is ``chatenv_operator``: the folder ``operator/`` keeps
the project's layout, and Python's standard library owns ``operator``.
"""
