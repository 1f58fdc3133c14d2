"""Test-wide settings: set before anything imports Triton or a hub client."""

import os

import torch

if not torch.cuda.is_available():
    # Triton kernels run (slowly) on the CPU through the interpreter; must be set before a kernel is defined.
    os.environ.setdefault("TRITON_INTERPRET", "1")
# Nothing in the tests may reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Random inputs everywhere, but a failure reproduces: each test starts from a fixed seed."""
    torch.manual_seed(0)
