"""gpdip.io.images: every image and mask source, the size limit, and the metrics.

Every case ends in a correct array (checked value by value against what was written)
or a GpdipError naming the file.
"""

from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from gpdip.errors import GpdipError, GpdipWarning
from gpdip.io.images import (
    center_crop,
    channels_first,
    channels_last,
    load_image,
    load_mask,
    psnr,
    save_image,
    ssim,
)

RNG = np.random.default_rng(11)
GREY8 = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
RGB8 = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def _save(tmp_path, name, array, mode=None):
    path = tmp_path / name
    Image.fromarray(array, mode).save(path)
    return path


# ---------------------------------------------------------------- images: PNG modes


def test_grey_8bit(tmp_path):
    x = load_image(_save(tmp_path, "g.png", GREY8))
    assert x.shape == (1, 5, 7) and x.dtype == torch.float64
    assert np.array_equal(x[0].numpy(), GREY8 / 255.0)


def test_grey_16bit_not_white(tmp_path):
    # the bug of the old DIP reader: a 16-bit PNG read through convert("L") was all white
    a16 = RNG.integers(0, 65536, (5, 7)).astype(np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(a16).save(path)
    assert np.array_equal(load_image(path)[0].numpy(), a16 / 65535.0)


def test_rgb_layout(tmp_path):
    x = load_image(_save(tmp_path, "c.png", RGB8))
    assert x.shape == (3, 5, 7)
    assert np.array_equal(x.permute(1, 2, 0).numpy(), RGB8 / 255.0)


def test_bilevel(tmp_path):
    bits = RNG.integers(0, 2, (5, 7)).astype(bool)
    path = tmp_path / "b.png"
    Image.fromarray(bits).save(path)
    assert np.array_equal(load_image(path)[0].numpy(), bits.astype(float))


@pytest.mark.parametrize("alpha, warns", [(255, False), (17, True)])
def test_rgba_alpha_dropped_colour_kept(tmp_path, alpha, warns):
    rgba = np.concatenate([RGB8, np.full((5, 7, 1), alpha, np.uint8)], axis=-1)
    path = _save(tmp_path, "a.png", rgba, "RGBA")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = load_image(path)
    assert any(issubclass(w.category, GpdipWarning) for w in caught) == warns
    assert np.array_equal(x.permute(1, 2, 0).numpy(), RGB8 / 255.0)  # not premultiplied


def test_la_alpha_dropped(tmp_path):
    la = np.stack([GREY8, np.full((5, 7), 3, np.uint8)], axis=-1)
    path = _save(tmp_path, "la.png", la, "LA")
    with pytest.warns(GpdipWarning, match="alpha"):
        x = load_image(path)
    assert x.shape == (1, 5, 7) and np.array_equal(x[0].numpy(), GREY8 / 255.0)


def test_palette_colour_and_grey(tmp_path):
    colour = Image.fromarray(RGB8).quantize(8)
    colour.save(tmp_path / "p.png")
    expected = np.asarray(colour.convert("RGB")) / 255.0
    x = load_image(tmp_path / "p.png")
    assert x.shape == (3, 5, 7) and np.array_equal(x.permute(1, 2, 0).numpy(), expected)
    Image.fromarray(GREY8).convert("P").save(tmp_path / "pg.png")  # a grey palette
    grey = load_image(tmp_path / "pg.png")
    assert grey.shape == (1, 5, 7) and np.array_equal(grey[0].numpy(), GREY8 / 255.0)


def test_grey_option_is_pillow_luma(tmp_path):
    path = _save(tmp_path, "c.png", RGB8)
    expected = np.asarray(Image.fromarray(RGB8).convert("L")) / 255.0
    assert np.array_equal(load_image(path, grey=True)[0].numpy(), expected)


# ---------------------------------------------------------------- images: NPY


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8, np.int16, bool])
def test_npy_real_dtypes(tmp_path, dtype):
    array = (RNG.random((4, 6)) * 2).astype(dtype)
    np.save(tmp_path / "x.npy", array)
    assert np.array_equal(load_image(tmp_path / "x.npy")[0].numpy(), array.astype(np.float64))


def test_npy_channels_last(tmp_path):
    array = RNG.random((4, 6, 3))
    np.save(tmp_path / "x.npy", array)
    assert np.array_equal(channels_last(load_image(tmp_path / "x.npy")).numpy(), array)


@pytest.mark.parametrize(
    "array, match",
    [
        (np.array([{"a": 1}, None], dtype=object), "dtype object|readable"),
        (np.array(["a", "b"]), "dtype"),
        (np.ones((4, 4), np.complex128), "dtype"),
        (np.zeros((4, 4), dtype=[("a", "f8")]), "dtype"),
        (RNG.random((4, 4, 5)), "C = 1 or 3"),
        (RNG.random((2, 4, 4, 1)), r"shape \(2, 4, 4, 1\)"),
        (np.zeros((0, 4)), "H, W ≥ 1"),
        (np.array([[0.0, np.nan]]), "NaN"),
        (np.array([[0.0, np.inf]]), "NaN or Inf"),
    ],
)
def test_npy_refused(tmp_path, array, match):
    np.save(tmp_path / "x.npy", array, allow_pickle=True)
    with pytest.raises(GpdipError, match=match):
        load_image(tmp_path / "x.npy")


def test_npy_pickle_never_run(tmp_path):
    marker = tmp_path / "ran"
    np.save(tmp_path / "evil.npy", np.array([_Evil(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(GpdipError):
        load_image(tmp_path / "evil.npy")
    with pytest.raises(GpdipError):
        load_mask(tmp_path / "evil.npy")
    assert not marker.exists()


class _Evil:
    """Unpickling this object would create ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# ---------------------------------------------------------------- images: broken files


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))


def test_huge_png_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_declaring(60000, 60000))
    with pytest.raises(GpdipError, match=r"60000×60000 = 3600000000 pixels; the limit"):
        load_image(path)
    with pytest.raises(GpdipError, match="limit"):
        load_mask(path)


def test_size_limit_is_an_argument(tmp_path):
    path = _save(tmp_path, "g.png", GREY8)
    with pytest.raises(GpdipError, match="limit is 34"):
        load_image(path, max_pixels=34)
    np.save(tmp_path / "x.npy", RNG.random((5, 7)))
    with pytest.raises(GpdipError, match="limit is 34"):
        load_image(tmp_path / "x.npy", max_pixels=34)
    assert load_image(path, max_pixels=35).shape == (1, 5, 7)


@pytest.mark.parametrize("keep", [0, 8, 20, 40, 0.5, 0.9])
def test_truncated_png(tmp_path, keep):
    data = tmp_path / "full.png"
    Image.fromarray(RNG.integers(0, 256, (64, 64), dtype=np.uint8)).save(data)
    raw = data.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(raw[: int(keep * len(raw)) if keep < 1 else keep])
    with pytest.raises(GpdipError, match=r"cut\.png"):
        load_image(cut)
    with pytest.raises(GpdipError, match=r"cut\.png"):
        load_mask(cut)


def test_truncated_npy_and_garbage(tmp_path):
    np.save(tmp_path / "x.npy", RNG.random((32, 32)))
    raw = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[:200])
    with pytest.raises(GpdipError, match=r"cut\.npy"):
        load_image(tmp_path / "cut.npy")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(GpdipError, match=r"junk\.png"):
        load_image(tmp_path / "junk.png")
    with pytest.raises(GpdipError, match="does not exist"):
        load_image(tmp_path / "absent.png")
    with pytest.raises(GpdipError, match="not a file"):
        load_image(tmp_path)


# ---------------------------------------------------------------- masks


@pytest.mark.parametrize(
    "values",
    [
        np.array([[0, 1], [1, 0]], np.uint8),  # 0/1, once refused as "observes no pixel"
        np.array([[0, 255], [255, 0]], np.uint8),  # 0/255
        np.array([[0, 100], [255, 0]], np.uint8),  # 0/100/255: once half the pixels lost
    ],
)
def test_mask_png_nonzero_is_observed(tmp_path, values):
    path = _save(tmp_path, "m.png", values)
    assert torch.equal(load_mask(path, (2, 2)), torch.tensor(values != 0))


def test_mask_png_16bit_colour_palette(tmp_path):
    m16 = np.array([[0, 1], [65535, 0]], np.uint16)
    Image.fromarray(m16).save(tmp_path / "m16.png")
    assert torch.equal(load_mask(tmp_path / "m16.png"), torch.tensor(m16 != 0))
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 1, 2] = 9  # any colour channel
    assert torch.equal(
        load_mask(_save(tmp_path, "c.png", rgb)), torch.tensor([[False, True], [False, False]])
    )
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 255  # alpha is ignored: an opaque black mask observes nothing
    rgba[1, 1, 0] = 1
    assert torch.equal(
        load_mask(_save(tmp_path, "a.png", rgba, "RGBA")),
        torch.tensor([[False, False], [False, True]]),
    )
    pal = Image.fromarray(np.array([[0, 200], [0, 0]], np.uint8)).convert("P")
    pal.save(tmp_path / "p.png")
    assert torch.equal(load_mask(tmp_path / "p.png"), torch.tensor([[False, True], [False, False]]))


@pytest.mark.parametrize(
    "array",
    [
        np.array([[True, False]]),
        np.array([[0.0, 0.5]]),
        np.array([[0, 255]], np.int64),
        np.array([[[0.0], [-1.0]]]),
    ],
)
def test_mask_npy_conventions(tmp_path, array):
    np.save(tmp_path / "m.npy", array)
    expected = torch.tensor(np.squeeze(array != 0, axis=-1) if array.ndim == 3 else array != 0)
    assert torch.equal(load_mask(tmp_path / "m.npy"), expected)


@pytest.mark.parametrize(
    "array, match",
    [
        (np.array([[0.0, np.nan]]), "NaN"),
        (np.array([[0.0, -np.inf]]), "NaN or Inf"),
        (np.ones((2, 2, 3)), r"expected \(H, W\)"),
        (np.ones(4), r"expected \(H, W\)"),
        (np.array(["1", "0"]), "dtype"),
    ],
)
def test_mask_npy_refused(tmp_path, array, match):
    np.save(tmp_path / "m.npy", array)
    with pytest.raises(GpdipError, match=match):
        load_mask(tmp_path / "m.npy")


def test_mask_shape_checked(tmp_path):
    path = _save(tmp_path, "m.png", np.ones((4, 6), np.uint8))
    with pytest.raises(GpdipError, match=r"6×4 \(W×H\) but the image is 5×3"):
        load_mask(path, (3, 5))


# ---------------------------------------------------------------- writing and layout


def test_round_trip_png_and_npy(tmp_path):
    grey = torch.tensor(GREY8 / 255.0)[None]
    save_image(tmp_path / "g.png", grey)
    assert torch.equal(load_image(tmp_path / "g.png"), grey)
    colour = torch.rand(3, 4, 5, dtype=torch.float64)
    save_image(tmp_path / "c.npy", colour)
    assert torch.equal(load_image(tmp_path / "c.npy"), colour)
    save_image(tmp_path / "g16.png", torch.tensor([[[0.0, 1 / 65535, 1.0]]]), bits=16)
    assert torch.equal(
        load_image(tmp_path / "g16.png"),
        torch.tensor([[[0.0, 1 / 65535, 1.0]]], dtype=torch.float64),
    )
    with pytest.raises(GpdipError, match="grey images only"):
        save_image(tmp_path / "c16.png", colour, bits=16)
    with pytest.raises(GpdipError, match=r"\.png or \.npy"):
        save_image(tmp_path / "x.jpg", grey)


def test_layout_helpers():
    x = torch.rand(3, 4, 5)
    assert torch.equal(channels_first(channels_last(x)), x)
    assert channels_last(x[:1]).shape == (4, 5)
    assert torch.equal(center_crop(x, 2), x[:, 1:3, 1:3])
    assert torch.equal(center_crop(x[0] > 0.5, 3), (x[0] > 0.5)[0:3, 1:4])
    with pytest.raises(GpdipError, match="crop size 5"):
        center_crop(x, 5)


# ---------------------------------------------------------------- metrics


def test_psnr_by_definition():
    assert psnr(torch.full((4, 4), 0.5), torch.full((4, 4), 0.6)) == pytest.approx(20.0)
    assert psnr(torch.ones(2, 2), torch.ones(2, 2)) == float("inf")
    assert psnr(torch.full((2, 2), 1.7), torch.ones(2, 2)) == float("inf")  # x clipped
    with pytest.raises(GpdipError, match="shape"):
        psnr(torch.ones(3, 2, 2), torch.ones(2, 2))


@pytest.mark.parametrize(
    "shape, noise",
    [((1, 40, 37), 0.05), ((3, 24, 30), 0.3), ((1, 11, 11), 0.1), ((1, 64, 64), 0.0)],
)
def test_ssim_matches_scikit_image(shape, noise):
    """Against scikit-image's independent implementation, same definition (Gaussian
    window σ = 1.5, population covariances); it averages the same valid-region map, so the
    two agree to rounding (float64)."""
    metrics = pytest.importorskip("skimage.metrics")
    gen = torch.Generator().manual_seed(shape[1] + shape[2])
    ref = torch.rand(shape, generator=gen, dtype=torch.float64)
    x = (ref + noise * torch.randn(shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    expected = metrics.structural_similarity(
        x.numpy(),
        ref.numpy(),
        channel_axis=0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
    )
    assert ssim(x, ref) == pytest.approx(expected, abs=1e-12)


def test_ssim_refuses_small_or_mismatched():
    with pytest.raises(GpdipError, match="H, W ≥ 11"):
        ssim(torch.rand(8, 8), torch.rand(8, 8))
    with pytest.raises(GpdipError, match="shape"):
        ssim(torch.rand(16, 16), torch.rand(16, 15))
