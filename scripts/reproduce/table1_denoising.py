"""Paper Table 1: denoising (σ = 25/255) of the 9 colour images by every inference scheme.

    python scripts/reproduce/table1_denoising.py [--config cpu|full|smoke] [--jobs 2]
        [--executor local|dask --dask-address tcp://...] [--images ...] [--report]

Rows: SGD+Early, SGD+Early+Avg, SGD+Input+Early, SGD+Input+Early+Avg, SGLD, GP-DIP, GP-RBF
(``gpdip.experiments.tables``).  ``cpu`` runs 64×64 centre crops with a width-32 ``unet2`` (about an
hour on 2 cores); ``full`` is the paper's scale (GPU-days; use the Dask executor).  Every
finished job appends a row to results/table1/CONFIG/results.jsonl and each DIP run
checkpoints, so an interrupted run resumes.  Writes table.md beside the paper's numbers.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tables import run

if __name__ == "__main__":
    run("denoising", "table1", __doc__.splitlines()[0])
