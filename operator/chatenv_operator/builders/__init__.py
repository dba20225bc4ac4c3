"""Pure builders: an ``Environment`` in, Kubernetes manifests (plain dicts) out.

No I/O here and no randomness: generated passwords are passed in by the
caller. ``render.plan`` lists every object of an environment in the order the
reconciler applies them; the tests compare each builder's whole output to an
expected manifest.
"""
