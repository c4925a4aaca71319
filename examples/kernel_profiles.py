"""Compile the catalog's DIP kernels and compare their radial profiles.

    python examples/kernel_profiles.py            # writes examples/kernel_profiles.png

Shows how input sigma, depth and upsampling shape the limiting kernel (compare the paper's
Figs. 3 and 6): conv nets with white-noise input are flat beyond one pixel, sigma widens the
peak, and resampling (autoencoder, U-Net) adds longer-range structure.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import gpdip
from gpdip.io.plotting import radial_profile

NAMES = ["conv-d3", "conv-d3-s2", "conv-d3-s6", "ae-d3", "unet2", "skip5-nearest"]


OUT = Path(__file__).with_suffix(".png")


def main(out: Path = OUT) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in NAMES:
        radii, values = radial_profile(gpdip.compile_kernel(name, 24).numpy())
        ax.plot(radii, values / values[0], "o-", ms=2, label=name)
    ax.set(xlabel="|r| (pixels)", ylabel="K(r) / K(0)", title="Limiting DIP kernels")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100, bbox_inches="tight")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
