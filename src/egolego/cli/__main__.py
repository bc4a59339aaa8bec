"""``python -m egolego.cli`` (and ``accelerate launch -m egolego.cli``)."""

import sys

from . import main

sys.exit(main())
