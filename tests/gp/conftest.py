import pytest
import torch

from gpdip.gp.grid import table_from_offsets


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


def exp_const_table(size, ls=6.0, c=0.3):
    """A rough kernel with a constant part, like compiled DIP tables."""
    return table_from_offsets(lambda r: 0.5 * torch.exp(-r / ls) + c, size)


def rbf_table(size, ls=3.0):
    return table_from_offsets(lambda r: torch.exp(-(r**2) / (2 * ls**2)), size)
