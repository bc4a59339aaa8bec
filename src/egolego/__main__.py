"""``python -m egolego``: the ``egolego`` command."""

import sys

from .cli import main

sys.exit(main())
