"""The paper's Tables 1 and 2 (Cheng et al. 2019), PSNR in dB, for side-by-side reports.

Transcribed from the paper's text (``../shared/papers``).  Table 2's Montage column of the
four SGD rows (30.21, 30.25, 33.15, 33.80) and its SGLD Montage value (34.67, solved from the
stated 34.51 average) come from a garbled extraction; the SGD rows' averages are not in the
extracted text and are computed here from the per-image values.
"""

from __future__ import annotations

# Row names as in the paper, in its order.
ROWS = ("SGD+Early", "SGD+Early+Avg", "SGD+Input+Early", "SGD+Input+Early+Avg", "SGLD")

# Table 1 (denoising, σ = 25): image → row → PSNR; keys are the files in data/denoising.
_T1_IMAGES = (
    "image_House256rgb",
    "image_Peppers512rgb",
    "image_Lena512rgb",
    "image_Baboon512rgb",
    "image_F16_512rgb",
    "kodim01",
    "kodim02",
    "kodim03",
    "kodim12",
)
_T1_VALUES = (  # one tuple per image, in ROWS order
    (26.74, 28.78, 28.18, 30.61, 30.86),
    (28.42, 29.20, 29.21, 30.46, 30.82),
    (29.17, 30.26, 30.17, 31.81, 32.05),
    (23.50, 23.82, 22.65, 23.69, 24.54),
    (29.76, 31.17, 30.57, 32.66, 32.90),
    (26.61, 27.14, 26.22, 27.32, 27.96),
    (28.68, 29.88, 30.29, 31.70, 32.05),
    (30.07, 31.00, 31.31, 32.86, 33.29),
    (29.78, 30.64, 30.66, 31.87, 32.79),
)
TABLE1 = {im: dict(zip(ROWS, v, strict=True)) for im, v in zip(_T1_IMAGES, _T1_VALUES, strict=True)}
TABLE1_AVERAGE = dict(zip(ROWS, (28.08, 29.10, 28.81, 30.33, 30.81), strict=True))

# Table 2 (inpainting, 50% Bernoulli): keys are the files in data/inpainting.
_T2_IMAGES = (
    "barbara",
    "boat",
    "house",
    "Lena512",
    "peppers256",
    "Cameraman256",
    "couple",
    "fingerprint",
    "hill",
    "man",
    "montage",
)
_T2_VALUES = (  # one tuple per row (ROWS order), one value per image (_T2_IMAGES order)
    (28.48, 31.54, 35.34, 35.00, 30.40, 27.05, 30.55, 32.24, 31.37, 31.32, 30.21),
    (28.71, 31.64, 35.45, 35.15, 30.48, 27.12, 30.63, 32.39, 31.44, 31.50, 30.25),
    (32.48, 32.71, 36.16, 36.91, 33.22, 29.66, 32.40, 32.79, 33.27, 32.59, 33.15),
    (33.18, 33.61, 37.00, 37.39, 33.53, 29.96, 33.30, 33.17, 33.58, 32.95, 33.80),
    (33.82, 34.26, 40.13, 37.73, 33.97, 30.33, 33.72, 33.41, 34.03, 33.54, 34.67),
)
TABLE2 = {
    im: {row: _T2_VALUES[r][i] for r, row in enumerate(ROWS)} for i, im in enumerate(_T2_IMAGES)
}
TABLE2_AVERAGE = {row: round(sum(_T2_VALUES[r]) / len(_T2_IMAGES), 2) for r, row in enumerate(ROWS)}
TABLE2_AVERAGE["SGLD"] = 34.51  # stated in the paper's text (Sec. 5.2.2)

PAPER = {"denoising": (TABLE1, TABLE1_AVERAGE), "inpainting": (TABLE2, TABLE2_AVERAGE)}

# The tasks of the table machinery and their images.  "salt-pepper" is not in the paper: the
# Table 1 images with salt-and-pepper noise, for the methods comparison's DOP (issue 13).
TASK_IMAGES = {"denoising": _T1_IMAGES, "inpainting": _T2_IMAGES, "salt-pepper": _T1_IMAGES}
