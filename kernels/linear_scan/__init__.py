"""Linear scan `h_t = a_t * h_{t-1} + b_t`: reference and fast forms plus the `linear_scan` dispatcher."""

from .naive import accumulation_dtype, naive_linear_scan

linear_scan = naive_linear_scan  # replaced by the dispatcher

__all__ = ["accumulation_dtype", "linear_scan", "naive_linear_scan"]
