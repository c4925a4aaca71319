"""The TOML front end: good files parse, bad files give a GpdipError naming file and path."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpdip import Architecture, Conv, GpdipError, InputSpec, ReLU, compile_kernel
from gpdip.arch.catalog import catalog_names
from gpdip.arch.parse import load_architecture, parse_architecture, read_architecture

BAD = sorted((Path(__file__).parent / "bad_architectures").glob("*.toml"))


def expected_message(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: ")
    return first.removeprefix("# expect: ")


# Files that describe a valid finite network which has no Gaussian limit: they parse, and
# the limit's rules reject them when a kernel is compiled (as neural-tangents' kernel_fn).
LIMIT_RULES = {
    "add_correlated",
    "concat_output",
    "ends_with_nonlinearity",
    "relu_twice",
    "relu_after_post_activation_add",
    "sinc_after_nearest",
}


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_architecture_file(path):
    with pytest.raises(GpdipError) as info:
        arch = read_architecture(path)
        assert path.stem in LIMIT_RULES, "parsed, but only limit-rule files may"
        compile_kernel(arch, 4, dims=1)
    message = str(info.value)
    assert message.startswith(str(path)), message  # names the file
    assert expected_message(path) in message


@pytest.mark.parametrize("name", catalog_names())
def test_catalog_parses(name):
    arch = load_architecture(name)
    assert arch.name == name and arch.layers
    assert Path(arch.source).read_text().startswith("#")  # each carries a comment on its origin


def test_python_api_equals_toml():
    text = """
    [input]
    channels = 3
    sigma = 1.5
    [blocks.body]
    layers = [{ type = "conv", channels = 16 }, { type = "relu" }]
    [network]
    layers = [{ type = "block", name = "body" }, { type = "conv", channels = 1, kernel_size = 1 }]
    """
    from_toml = parse_architecture(tomllib.loads(text))
    from gpdip import Block

    from_api = Architecture(
        InputSpec(3, 1.5), (Block("body", (Conv(16), ReLU())), Conv(1, kernel_size=1))
    )
    assert from_toml == from_api
    assert compile_kernel(from_toml, 6).equal(compile_kernel(from_api, 6))


def test_python_api_rejects_bad_values():
    with pytest.raises(GpdipError, match="kernel_size"):
        Architecture(InputSpec(), (Conv(8, kernel_size=2),))
    relu_twice = Architecture(InputSpec(), (Conv(8), ReLU(), ReLU(), Conv(1)))  # finite: fine
    with pytest.raises(GpdipError, match="ReLU needs a Gaussian input"):
        compile_kernel(relu_twice, 4)


@pytest.mark.parametrize("sigma", [3.9e-197, 1e-3, 3.4e38])
def test_extreme_sigma_gives_finite_kernel(sigma):
    """Found by the fuzz: σ² underflow (NaN) and 13σ overflow (OverflowError)."""
    arch = Architecture(InputSpec(3, sigma), ())
    kernel = compile_kernel(arch, 3, dims=1)
    assert kernel.isfinite().all() and float(kernel[2]) == 1.0


def test_unknown_catalog_name_lists_catalog():
    with pytest.raises(GpdipError, match=r"catalog: .*unet2"):
        load_architecture("unet3")


def test_missing_file():
    with pytest.raises(GpdipError, match="no such architecture file"):
        load_architecture("does/not/exist.toml")


# --- property-based fuzz: arbitrary TOML-like values never crash the parser -----------------

scalars = st.one_of(
    st.integers(-3, 300), st.floats(allow_nan=True), st.text(max_size=8), st.booleans()
)
layer_types = st.sampled_from(
    ["conv", "relu", "leaky_relu", "erf", "downsample", "upsample", "skip", "block", "bogus"]
)
keys = st.sampled_from(
    [
        "channels",
        "kernel_size",
        "stride",
        "weight_var",
        "bias_var",
        "padding",
        "negative_slope",
        "factor",
        "mode",
        "branch",
        "shortcut",
        "name",
        "typo",
    ]
)


@st.composite
def layer_tables(draw, depth: int = 2):
    table = {"type": draw(layer_types)}
    for key in draw(st.lists(keys, max_size=4, unique=True)):
        if key in ("branch", "shortcut") and depth > 0:
            table[key] = draw(
                st.one_of(st.text(max_size=4), st.lists(layer_tables(depth=depth - 1), max_size=3))
            )
        elif key == "mode":
            table[key] = draw(
                st.sampled_from(
                    ["add", "concat", "stride", "avg", "nearest", "bilinear", "sinc", "x"]
                )
            )
        else:
            table[key] = draw(scalars)
    return table


documents = st.fixed_dictionaries(
    {
        "input": st.dictionaries(
            st.sampled_from(["channels", "sigma", "variance", "x"]), scalars, max_size=3
        ),
        "network": st.fixed_dictionaries({"layers": st.lists(layer_tables(), max_size=5)}),
    },
    optional={
        "blocks": st.dictionaries(
            st.sampled_from(["a", "b"]),
            st.fixed_dictionaries({"layers": st.lists(layer_tables(1), max_size=3)}),
            max_size=2,
        )
    },
)


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(documents)
def test_fuzz_parser_raises_only_gpdip_error(document):
    """Any decoded TOML either parses to a valid architecture or raises GpdipError."""
    try:
        arch = parse_architecture(document, source="fuzz.toml")
    except GpdipError as exc:
        assert str(exc).startswith("fuzz.toml"), str(exc)
        return
    # What parses must compile: no crash, a symmetric kernel with finite values.
    try:
        kernel = compile_kernel(arch, 3, dims=1)
    except GpdipError:  # e.g. a table above the size limit is reported, never a crash
        return
    assert kernel.isfinite().all()
    assert kernel.flip(0).allclose(kernel)
