"""`python -m chat_service`: see `chat_service.cli`."""

from __future__ import annotations

import sys

from chat_service.cli import main

sys.exit(main(sys.argv[1:]))
