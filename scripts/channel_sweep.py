#!/usr/bin/env python
"""Channel sweep, DIP vs GP (paper Fig. 6): see ``gpdip.dip.sweep``.

python scripts/channel_sweep.py --widths 16 32 64 128 --seeds 0 1 --out docs/results/dip/sweep
python scripts/channel_sweep.py --smoke --out /tmp/sweep-smoke
python scripts/channel_sweep.py --executor dask --dask-address tcp://host:8786
"""

import sys

from gpdip.dip.sweep import main

if __name__ == "__main__":
    sys.exit(main())
