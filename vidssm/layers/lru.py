"""Linear Recurrent Unit, Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long
Sequences", https://arxiv.org/abs/2303.06349.

Complex diagonal recurrence with exponential parametrisation (eq. 6-7 and appendix A):

    λ   = exp(-exp(ν_log) + i exp(θ_log))
    h_t = λ ⊙ h_{t-1} + (γ ⊙ (B_re + i B_im)) u_t,      γ = exp(γ_log)
    y_t = Re(C h_t) + D ⊙ u_t,                          C = C_re + i C_im

with the ring initialisation |λ| ~ area-uniform in [r_min, r_max], arg λ ~ U[0, max_phase] and
γ-normalisation γ = sqrt(1 - |λ|^2). Each ingredient can be switched off (the paper's sections 3.1-3.4):
`complex=False` keeps a real diagonal (λ real, real B and C; section 3.2), `exp_param=False` makes λ itself the
parameter, projected onto the closed unit disk (section 3.3), `ring_init=False` draws λ area-uniform on the disk
|λ| <= r_max with any phase (the circular law of a Glorot-initialised dense matrix, section 3.2),
`gamma_norm=False` sets γ = 1 (section 3.4).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vidssm.kernels import complex_linear_scan

from .state import LRUState


def init_eigenvalues(
    d_state: int, r_min: float, r_max: float, max_phase: float, ring: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial `(|λ|^2, arg λ)`, each `[E]`: area-uniform on the ring `[r_min, r_max]` with phase in
    `[0, max_phase]` (`ring`), or area-uniform on the disk `|λ| <= r_max` with phase in `[0, 2π]`."""
    if not ring:
        r_min, max_phase = 0.0, 2 * math.pi
    u1, u2 = torch.rand(d_state), torch.rand(d_state)
    # the floor keeps log|λ| finite for a draw at 0 on the disk (r_min = 0); ring draws are far above it
    return (u1 * (r_max**2 - r_min**2) + r_min**2).clamp_min(1e-12), max_phase * u2


class LRU(nn.Module):
    """The LRU layer; input and output `[B, T, d_model]`, state `[B, d_state, 2]` float32 (re, im).

    Args:
        d_model: Input/output channels `D`.
        d_state: Complex state size `E`.
        r_min: Smallest initial |λ|.
        r_max: Largest initial |λ|.
        max_phase: Largest initial arg λ.
        complex: Complex diagonal (False: real λ and real `B`, `C`; the state's imaginary part stays 0).
        exp_param: `λ = exp(-exp(ν_log) + i exp(θ_log))` (False: parameters `lambda_re`, `lambda_im` are λ,
            projected onto the closed unit disk in the forward pass).
        ring_init: Ring initialisation (False: area-uniform on the disk `|λ| <= r_max`, any phase).
        gamma_norm: γ-normalisation of the input, `γ = exp(γ_log)` initialised to `sqrt(1 - |λ|^2)` (False: 1).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        complex: bool = True,
        exp_param: bool = True,
        ring_init: bool = True,
        gamma_norm: bool = True,
    ) -> None:
        super().__init__()
        self.d_model, self.d_state = d_model, d_state
        self.complex, self.exp_param = complex, exp_param
        modulus_sq, phase = init_eigenvalues(d_state, r_min, r_max, max_phase, ring_init)
        if not complex:
            phase = torch.zeros_like(phase)  # λ = |λ| > 0 at init; direct parameters may turn negative
        if exp_param:
            self.nu_log = nn.Parameter(torch.log(-0.5 * torch.log(modulus_sq)))
            self.theta_log = nn.Parameter(torch.log(phase)) if complex else None
            modulus = torch.exp(-torch.exp(self.nu_log.detach()))
        else:
            modulus = torch.sqrt(modulus_sq)
            self.lambda_re = nn.Parameter(modulus * torch.cos(phase))
            self.lambda_im = nn.Parameter(modulus * torch.sin(phase)) if complex else None
        self.gamma_log = nn.Parameter(torch.log(torch.sqrt(1 - modulus**2))) if gamma_norm else None
        b_fan = 2 * d_model if complex else d_model  # E|B u|^2 = |u|^2 / D in both cases
        self.B_re = nn.Parameter(torch.randn(d_state, d_model) / math.sqrt(b_fan))
        self.B_im = nn.Parameter(torch.randn(d_state, d_model) / math.sqrt(b_fan)) if complex else None
        self.C_re = nn.Parameter(torch.randn(d_model, d_state) / math.sqrt(d_state))
        self.C_im = nn.Parameter(torch.randn(d_model, d_state) / math.sqrt(d_state)) if complex else None
        self.D = nn.Parameter(torch.randn(d_model))

    def init_state(self, batch_size: int, device: torch.device | None = None) -> LRUState:
        """Zero state `[B, E, 2]` float32."""
        return LRUState(torch.zeros(batch_size, self.d_state, 2, device=device, dtype=torch.float32))

    def eigenvalues(self) -> torch.Tensor:
        """The diagonal `λ` as (real, imaginary) pairs `[E, 2]`."""
        if self.exp_param:
            modulus = torch.exp(-torch.exp(self.nu_log))
            if not self.complex:
                return torch.stack([modulus, torch.zeros_like(modulus)], dim=-1)
            phase = torch.exp(self.theta_log)
            return torch.stack([modulus * torch.cos(phase), modulus * torch.sin(phase)], dim=-1)
        im = self.lambda_im if self.complex else torch.zeros_like(self.lambda_re)
        lam = torch.stack([self.lambda_re, im], dim=-1)
        return lam / torch.linalg.vector_norm(lam, dim=-1, keepdim=True).clamp_min(1.0)  # onto |λ| <= 1

    def gamma(self) -> torch.Tensor:
        """The input scale `γ` `[E]` (ones without γ-normalisation)."""
        return torch.exp(self.gamma_log) if self.gamma_log is not None else torch.ones_like(self.B_re[:, 0])

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
        gamma = self.gamma()[:, None]
        uf = u.float()
        bu_re = uf @ (self.B_re * gamma).T
        bu_im = uf @ (self.B_im * gamma).T if self.complex else torch.zeros_like(bu_re)
        bu = torch.stack([bu_re, bu_im], dim=-1)  # [B, T, E, 2]
        h, h_last = complex_linear_scan(self.eigenvalues(), bu, None if state is None else state.h, reset)
        y = h[..., 0] @ self.C_re.T  # Re(C h) + D u
        if self.complex:
            y = y - h[..., 1] @ self.C_im.T
        y = y + self.D * uf
        return y.to(u.dtype), LRUState(h_last)
