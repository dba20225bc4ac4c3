"""``python -m chatenv_operator.cli``: the same as the `chatenv` command."""

import sys

from .main import main

sys.exit(main())
