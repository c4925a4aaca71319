"""Exact 2-D prior samples of the U-Net GP by circulant embedding.

python examples/prior_samples.py              # writes examples/prior_samples.png
"""

from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from gpdip.gp import DIPKernel, sample_prior
from gpdip.io.atomic import save_figure

OUT = Path(__file__).with_suffix(".png")


def main(out: Path = OUT) -> None:
    kernel = DIPKernel("unet2").double()
    samples = sample_prior(
        lambda size: kernel.table(size).detach(),
        (128, 128),
        n=3,
        generator=torch.Generator().manual_seed(0),
    )
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.4))
    for ax, sample in zip(axes, samples, strict=True):
        ax.imshow(sample.numpy(), cmap="gray")
        ax.axis("off")
    fig.suptitle("Prior samples of the unet2 limiting GP")
    fig.tight_layout()
    save_figure(out, fig, dpi=100, bbox_inches="tight")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
