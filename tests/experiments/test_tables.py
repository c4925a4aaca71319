"""Tables 1 and 2: the paper's numbers as transcribed, task lists, the summary's averages."""

import pytest

from gpdip.errors import GpdipError
from gpdip.experiments.paper_tables import ROWS, TABLE1, TABLE1_AVERAGE, TABLE2
from gpdip.experiments.tables import ALL_ROWS, CONFIGS, summarize, table_tasks


def test_table1_transcription_matches_the_papers_averages():
    """The paper states each row's average; the mean of the 9 transcribed per-image values
    must reproduce it to its rounding (±0.005 + float error)."""
    for row in ROWS:
        mean = sum(TABLE1[im][row] for im in TABLE1) / len(TABLE1)
        assert abs(mean - TABLE1_AVERAGE[row]) <= 0.006, row


def test_table2_has_every_image_and_row():
    assert len(TABLE2) == 11 and all(set(v) == set(ROWS) for v in TABLE2.values())


def test_tasks_cover_images_runs_and_seeds(tmp_path):
    tasks = table_tasks("inpainting", "cpu", tmp_path)
    assert len(tasks) == 11 * 5 * len(CONFIGS["cpu"].seeds)
    assert len(table_tasks("denoising", "full", tmp_path, runs=("sgld",))) == 9 * 10


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"table": "deblurring"}, "table 'deblurring'"),
        ({"config": "gpu"}, "config 'gpu'"),
        ({"image_names": ["lena"]}, "images \\['lena'\\]"),
        ({"runs": ("adam",)}, "runs \\['adam'\\]"),
    ],
)
def test_bad_requests_name_what_was_expected(tmp_path, kwargs, match):
    args = {"table": "inpainting", "config": "cpu", "out": tmp_path, **kwargs}
    with pytest.raises(GpdipError, match=match):
        table_tasks(**args)


def _row(image, run, scores, seed=0):
    return {
        "table": "inpainting",
        "config": "cpu",
        "image": image,
        "run": run,
        "seed": seed,
        "scores": scores,
    }


def test_summary_averages_only_images_every_scheme_finished():
    rows = []
    for image, base in (("barbara", 30.0), ("boat", 32.0)):
        rows += [
            _row(image, "sgd-avg", {"SGD+Early": base, "SGD+Early+Avg": base + 0.5}),
            _row(
                image,
                "sgd-input-avg",
                {"SGD+Input+Early": base + 1, "SGD+Input+Early+Avg": base + 1.5},
            ),
            _row(image, "sgld", {"SGLD": base + 2}),
            _row(image, "gp-dip", {"GP-DIP": base + 3}),
            _row(image, "gp-rbf", {"GP-RBF": base - 1}),
        ]
    rows.append(_row("house", "sgld", {"SGLD": 99.0}))  # incomplete image: not averaged
    rows.append(_row("barbara", "sgld", {"SGLD": 34.0}, seed=1))  # second seed: mean ± std
    text = summarize(rows, "inpainting", "cpu")
    assert "average (2 images)" in text
    assert "| SGLD | 33.00 ± 1.41 | 34.00 | 99.00 | **33.50** | 34.51 |" in text
    assert "| SGD+Early | 30.00 | 32.00 | — | **31.00** |" in text
    assert all(f"| {s} |" in text for s in ALL_ROWS)
