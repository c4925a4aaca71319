"""``python -m gpdip.cli``: the same as the ``gpdip`` console script."""

import sys

from gpdip.cli.main import main

sys.exit(main())
