"""Shared test set-up: deterministic single-threaded torch, float64 references."""

from __future__ import annotations

import torch


def pytest_configure(config):
    # One thread: results are reproducible and CI's 2 cores are not oversubscribed.
    torch.set_num_threads(1)
