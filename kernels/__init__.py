"""vidssm.kernels: public ops only. Triton is imported lazily so CPU-only installs work."""

from .linear_scan import complex_linear_scan, linear_scan, naive_linear_scan

__all__ = ["complex_linear_scan", "linear_scan", "naive_linear_scan"]
