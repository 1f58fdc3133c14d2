"""Linear Recurrent Unit, Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long
Sequences", https://arxiv.org/abs/2303.06349.

Complex diagonal recurrence with exponential parametrisation (eq. 6-7 and appendix A):

    λ   = exp(-exp(ν_log) + i exp(θ_log))
    h_t = λ ⊙ h_{t-1} + (γ ⊙ (B_re + i B_im)) u_t,      γ = exp(γ_log)
    y_t = Re(C h_t) + D ⊙ u_t,                          C = C_re + i C_im

with the ring initialisation |λ| ~ area-uniform in [r_min, r_max], arg λ ~ U[0, max_phase] and
γ-normalisation γ = sqrt(1 - |λ|^2).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from vidssm.kernels import complex_linear_scan

from .state import LRUState


class LRU(nn.Module):
    """The LRU layer; input and output `[B, T, d_model]`, state `[B, d_state, 2]` float32 (re, im).

    Args:
        d_model: Input/output channels `D`.
        d_state: Complex state size `E`.
        r_min: Smallest initial |λ|.
        r_max: Largest initial |λ|.
        max_phase: Largest initial arg λ.
    """

    def __init__(
        self, d_model: int, d_state: int, r_min: float = 0.0, r_max: float = 1.0, max_phase: float = 2 * math.pi
    ) -> None:
        super().__init__()
        self.d_model, self.d_state = d_model, d_state
        u1, u2 = torch.rand(d_state), torch.rand(d_state)
        nu_log = torch.log(-0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2))
        theta_log = torch.log(max_phase * u2)
        lam_abs = torch.exp(-torch.exp(nu_log))
        self.nu_log = nn.Parameter(nu_log)
        self.theta_log = nn.Parameter(theta_log)
        self.gamma_log = nn.Parameter(torch.log(torch.sqrt(1 - lam_abs**2)))
        self.B_re = nn.Parameter(torch.randn(d_state, d_model) / math.sqrt(2 * d_model))
        self.B_im = nn.Parameter(torch.randn(d_state, d_model) / math.sqrt(2 * d_model))
        self.C_re = nn.Parameter(torch.randn(d_model, d_state) / math.sqrt(d_state))
        self.C_im = nn.Parameter(torch.randn(d_model, d_state) / math.sqrt(d_state))
        self.D = nn.Parameter(torch.randn(d_model))

    def init_state(self, batch_size: int, device: torch.device | None = None) -> LRUState:
        """Zero state `[B, E, 2]` float32."""
        return LRUState(torch.zeros(batch_size, self.d_state, 2, device=device, dtype=torch.float32))

    def eigenvalues(self) -> torch.Tensor:
        """The diagonal `λ` as (real, imaginary) pairs `[E, 2]`."""
        modulus, phase = torch.exp(-torch.exp(self.nu_log)), torch.exp(self.theta_log)
        return torch.stack([modulus * torch.cos(phase), modulus * torch.sin(phase)], dim=-1)

    def forward(
        self, u: torch.Tensor, reset: torch.Tensor | None = None, state: LRUState | None = None
    ) -> tuple[torch.Tensor, LRUState]:
        """Runs the layer. Complex numbers are real `[..., 2]` pairs throughout, so the layer exports.

        Args:
            u: Inputs `[B, T, D]`.
            reset: Bool `[B, T]` or None; true starts a new segment (state dropped) at that step.
            state: Previous state or None for zeros.

        Returns:
            `y` `[B, T, D]` in `u`'s dtype and the new state.
        """
        gamma = torch.exp(self.gamma_log)[:, None]
        uf = u.float()
        bu = torch.stack([uf @ (self.B_re * gamma).T, uf @ (self.B_im * gamma).T], dim=-1)  # [B, T, E, 2]
        h, h_last = complex_linear_scan(self.eigenvalues(), bu, None if state is None else state.h, reset)
        y = h[..., 0] @ self.C_re.T - h[..., 1] @ self.C_im.T + self.D * uf  # Re(C h) + D u
        return y.to(u.dtype), LRUState(h_last)
