"""vidssm.kernels: public ops only. Triton is imported lazily so CPU-only installs work."""

from .linear_scan import linear_scan, naive_linear_scan

__all__ = ["linear_scan", "naive_linear_scan"]
