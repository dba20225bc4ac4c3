#!/usr/bin/env python3
"""The local Kubernetes cluster of chatenv's development and tests.

    hack/cluster.py build [--fake-nodes]   build or reuse the cached binaries
    hack/cluster.py up [--fake-nodes]      start (a real node, or kwok's fake nodes)
    hack/cluster.py images [NAME...]       build and load images into the real node
    hack/cluster.py env | info | status    where it is, what runs
    hack/cluster.py down                   stop exactly what `up` started; restore the host

The code is in hack/localcluster/ (see its package docstring). Standard library only:
this runs before the project's dependencies exist.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from localcluster.cli import main

if __name__ == "__main__":
    sys.exit(main())
