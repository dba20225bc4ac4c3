"""Does a live object still say what we applied? Pure comparisons, no I/O.

Each applied object carries ``chatenv.dev/applied-hash``, a digest of what was
applied. An object is up to date when that hash matches what we would apply now
*and* every field we set still has its value in the live object (server defaults
and fields of other managers are ignored; quantities compare by value).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .constants import ANNOTATION_SPEC_HASH

Manifest = dict[str, Any]


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    """A stable digest of what we apply (without the hash annotation itself)."""
    data = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def with_hash(manifest: Manifest) -> Manifest:
    """The manifest with its own hash recorded in an annotation."""
    digest = manifest_hash(manifest)
    meta = dict(manifest.get("metadata", {}))
    meta["annotations"] = {**meta.get("annotations", {}), ANNOTATION_SPEC_HASH: digest}
    return {**manifest, "metadata": meta}


def is_subset(desired: Any, live: Any) -> bool:
    """True when every field we set has that value in the live object.

    Fields the server adds (defaults, status, metadata) are ignored; lists
    must match item by item, each item compared the same way.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(k in live and is_subset(v, live[k]) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(live, list) and len(desired) == len(live)
                and all(is_subset(d, v) for d, v in zip(desired, live, strict=True)))
    if desired == live:
        return True
    # The server stores quantities canonically ("0.5" comes back as "500m").
    a, b = quantity(desired), quantity(live)
    return a is not None and a == b


_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$")
_SUFFIX: dict[str, int | Decimal] = {
           "": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
           "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity's value, or None when ``value`` is not a quantity string."""
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value)
    if not match:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    try:
        base = Decimal(number)
    except InvalidOperation:
        return None
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return base * Decimal(10) ** int(suffix[1:])
    return base * _SUFFIX[suffix]


def up_to_date(desired: Manifest, live: Manifest | None) -> bool:
    """Skip the write: our last apply is unchanged and nobody edited our fields since."""
    if live is None:
        return False
    applied = live.get("metadata", {}).get("annotations", {}).get(ANNOTATION_SPEC_HASH)
    return applied == desired["metadata"]["annotations"][ANNOTATION_SPEC_HASH] and is_subset(
        desired, live)


