"""The waker: what an environment's host answers while its chat pods are not there.

While an environment sleeps (or is suspended, or its chat pods are starting), its Ingress
sends every path to the Service ``chatenv-waker`` in the operator's namespace (through an
ExternalName Service in the environment's namespace). One waker serves every environment:
it finds the ChatEnvironment by the request's Host and answers

- sleeping: it asks the operator to wake it (the annotation
  ``chatenv.dev/wake-requested-at``, the only change its admission policy allows), and
  answers a page that says so and reloads itself; ``/api/*`` gets ``503`` with
  ``Retry-After``;
- waking or starting: the same page, without asking again;
- suspended by a person (``spec.suspended: true``): a page that says a visit does not wake
  it, and how to resume it;
- no environment at that host: ``404``.

``pages`` decides and renders (pure); ``directory`` keeps the environments in memory from a
watch and sends the wake requests; ``serving`` is the HTTP server; ``__main__`` starts it.
"""
