"""Shared fixtures of the DIP tests."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # The tests' models are tiny: one intra-op thread avoids thread-pool overhead,
    # which dominates (≈10× slower per step) on a shared 2-core machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
