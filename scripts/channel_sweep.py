#!/usr/bin/env python
"""Channel sweep, DIP vs GP (paper Fig. 6): see ``gpdip.experiments.sweep``.

# the DIP's Bayesian posterior (pSGLD, limit prior, likelihood = the GP's noise variance)
python scripts/channel_sweep.py --method sgld --noise-var 0.0025 --lr 0.001 --iters 3000 \
    --widths 16 32 64 128 --seeds 0 1 --jobs 2 --out results/dip/sweep
# exact Bayesian readout (last layer) over the hidden layers' prior draw: cheap, any width
python scripts/channel_sweep.py --method readout --noise-var 0.0025 --iters 0 \
    --widths 16 32 64 128 256 512 --seeds 0 1 2 --jobs 1 --out results/dip/sweep
# gradient descent (Adam, final iterate), GP with the noise-free nugget
python scripts/channel_sweep.py --widths 16 32 64 128 --seeds 0 1 --iters 1000 --lr 0.003 \
    --out results/dip/sweep
python scripts/channel_sweep.py --report --widths 16 32 64 128 256 512 --out results/dip/sweep
python scripts/channel_sweep.py --smoke --out /tmp/sweep-smoke
python scripts/channel_sweep.py --executor dask --dask-address tcp://host:8786
"""

import sys

from gpdip.experiments.sweep import main

if __name__ == "__main__":
    sys.exit(main())
