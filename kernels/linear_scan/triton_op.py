"""The Triton forms of the linear scan as `torch.library` custom ops, with fake impls and autograd.

Computes `naive_linear_scan`. `vidssm::linear_scan_fwd` and `vidssm::linear_scan_bwd` wrap the
kernels of `fused_recurrent.py` (sequential; short `T` and single steps) and `chunk.py` (chunked;
long `T` with few rows). Registered fake (meta) implementations and autograd let
`torch.compile(fullgraph=True)` and `torch.export` trace through them as single graph nodes.

The ops take real tensors only: complex inputs cross as `torch.view_as_real` pairs `[..., D, 2]`
(a view, no copy) with `planar=True`, so the kernels do planar arithmetic and no complex dtype
reaches a graph. Triton itself is imported only when an op first runs, so CPU installs without
Triton import this module fine.
"""

import functools
from typing import Literal

import torch

from ._host import acc_dtype, channel_block, next_pow2, state_shape
from .naive import accumulation_dtype

TritonForm = Literal["auto", "fused_recurrent", "chunk"]
TRITON_FORMS: tuple[str, ...] = ("auto", "fused_recurrent", "chunk")

# Dispatch between the forms (`choose_triton_form`): the sequential kernel runs `B * cdiv(D, BD)`
# programs of `T` dependent steps. Below about 8 programs per SM an H100 cannot hide the load
# latency of those steps, and the chunked form (5 tensor passes instead of 3, but `T / BT` times
# more programs) wins once `T` is long enough to cut into chunks.
_CHUNK_MIN_T = 128
_CHUNK_MAX_PROGRAMS_PER_SM = 8
# Programs per SM the chunked form aims for when it picks its chunk length.
_CHUNK_TARGET_PROGRAMS_PER_SM = 16
_DEFAULT_NUM_SMS = 132  # H100 SXM; used for tensors that are not on a GPU


def _programs(batch: int, dim: int, planar: bool) -> int:
    """Programs of the sequential kernel's `(B, cdiv(D, BD))` grid."""
    block, _ = channel_block(dim, planar)
    return batch * -(-dim // block)


def choose_triton_form(
    batch: int, length: int, dim: int, planar: bool = False, num_sms: int = _DEFAULT_NUM_SMS
) -> Literal["fused_recurrent", "chunk"]:
    """The Triton form `triton_linear_scan` uses for a `[B, T, D]` input when `form="auto"`.

    Args:
        batch: `B`, the number of independent sequences.
        length: `T`, the number of time steps (1 is the streaming step).
        dim: `D`, the number of channels.
        planar: Complex input.
        num_sms: Streaming multiprocessors of the GPU.

    Returns:
        ``"chunk"`` for long sequences too few to fill the GPU, ``"fused_recurrent"`` otherwise.
    """
    if length >= _CHUNK_MIN_T and _programs(batch, dim, planar) < _CHUNK_MAX_PROGRAMS_PER_SM * num_sms:
        return "chunk"
    return "fused_recurrent"


def choose_chunk_size(
    batch: int, length: int, dim: int, planar: bool = False, num_sms: int = _DEFAULT_NUM_SMS
) -> int:
    """Steps per chunk `BT` of the chunked form: enough chunks to fill the GPU, 16 to 256 steps.

    Args:
        batch: `B`.
        length: `T`.
        dim: `D`.
        planar: Complex input.
        num_sms: Streaming multiprocessors of the GPU.

    Returns:
        A power of two in [16, 256].
    """
    want_chunks = -(-_CHUNK_TARGET_PROGRAMS_PER_SM * num_sms // _programs(batch, dim, planar))
    return min(256, max(16, next_pow2(-(-length // want_chunks))))


@torch.compiler.assume_constant_result  # compiled graphs bake the count in instead of tracing it
def _num_sms(device: torch.device) -> int:
    if device.type == "cuda":
        return _cuda_num_sms(device.index if device.index is not None else torch.cuda.current_device())
    return _DEFAULT_NUM_SMS


@functools.cache
def _cuda_num_sms(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


@torch.library.custom_op("vidssm::linear_scan_fwd", mutates_args=())
def linear_scan_fwd(
    a: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None,
    reset: torch.Tensor | None,
    planar: bool,
    form: str,
    chunk_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton forward: `h` (packed, `b`'s shape and dtype) and `h_last` `[B, D(, 2)]` (accumulation dtype).

    Args:
        a: Decay broadcastable to `b`: `[B, T, D]`, `[D]`, ... (`[..., D, 2]` pairs when `planar`).
        b: Input `[B, T, D]` real, or `[B, T, D, 2]` pairs when `planar`.
        h0: Initial state `[B, D(, 2)]` in the accumulation dtype (float32, or float64), or None.
        reset: Bool `[B, T]`, or None.
        planar: The last dim holds (re, im) pairs of complex numbers.
        form: ``"fused_recurrent"`` or ``"chunk"``.
        chunk_size: Steps per chunk of the ``"chunk"`` form.
    """
    # The kernel modules import Triton (and read TRITON_INTERPRET) when first imported: here, at the first run.
    if form == "chunk":
        from .chunk import chunk_fwd

        return chunk_fwd(a, b, h0, reset, planar, chunk_size)
    from .fused_recurrent import fused_recurrent_fwd

    return fused_recurrent_fwd(a, b, h0, reset, planar)


# torch.library needs each fake (meta) impl to repeat its op's signature: the two repeats below are required.
@linear_scan_fwd.register_fake
def _linear_scan_fwd_fake(
    a: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None,
    reset: torch.Tensor | None,
    planar: bool,
    form: str,
    chunk_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    h = torch.empty(b.shape, dtype=b.dtype, device=b.device)
    return h, b.new_empty(state_shape(b), dtype=acc_dtype(a, b))


@torch.library.custom_op("vidssm::linear_scan_bwd", mutates_args=())
def linear_scan_bwd(
    a: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor | None,
    reset: torch.Tensor | None,
    dh: torch.Tensor,
    dht: torch.Tensor,
    planar: bool,
    form: str,
    chunk_size: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Triton backward: `da` (`a`'s shape and dtype), `db` (`h`'s) and `dh0` `[B, D(, 2)]`.

    Args:
        a: The forward's decay.
        h: The forward's output `h`.
        h0: The forward's initial state, or None (`dh0` is then the gradient a zero `h0` would get).
        reset: The forward's reset mask, or None.
        dh: Gradient of `h`.
        dht: Gradient of `h_last`.
        planar: As in `linear_scan_fwd`.
        form: As in `linear_scan_fwd`.
        chunk_size: As in `linear_scan_fwd`.
    """
    if form == "chunk":
        from .chunk import chunk_bwd

        return chunk_bwd(a, h, h0, reset, dh, dht, planar, chunk_size)
    from .fused_recurrent import fused_recurrent_bwd

    return fused_recurrent_bwd(a, h, h0, reset, dh, dht, planar)


@linear_scan_bwd.register_fake
def _linear_scan_bwd_fake(
    a: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor | None,
    reset: torch.Tensor | None,
    dh: torch.Tensor,
    dht: torch.Tensor,
    planar: bool,
    form: str,
    chunk_size: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    da = torch.empty(a.shape, dtype=a.dtype, device=a.device)
    db = torch.empty(h.shape, dtype=h.dtype, device=h.device)
    return da, db, h.new_empty(state_shape(h), dtype=acc_dtype(a, h))


def _setup_context(ctx: torch.autograd.function.FunctionCtx, inputs: tuple, output: tuple) -> None:
    a, _, h0, reset, planar, form, chunk_size = inputs
    ctx.save_for_backward(a, output[0], h0, reset)
    ctx.planar, ctx.form, ctx.chunk_size = planar, form, chunk_size


def _backward(
    ctx: torch.autograd.function.FunctionCtx, dh: torch.Tensor | None, dht: torch.Tensor | None
) -> tuple[torch.Tensor | None, ...]:
    a, h, h0, reset = ctx.saved_tensors
    if dh is None:
        dh = torch.zeros_like(h)
    if dht is None:
        dht = h.new_zeros(state_shape(h), dtype=acc_dtype(a, h))
    da, db, dh0 = linear_scan_bwd(a, h, h0, reset, dh, dht, ctx.planar, ctx.form, ctx.chunk_size)
    return da, db, None if h0 is None else dh0, None, None, None, None


linear_scan_fwd.register_autograd(_backward, setup_context=_setup_context)


def planar_triton_linear_scan(
    a: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None = None,
    reset: torch.Tensor | None = None,
    form: TritonForm = "auto",
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Triton scan of complex numbers stored as real `[..., 2]` (re, im) pairs, without a copy.

    Args:
        a: Decay pairs broadcastable to `[B, T, D, 2]` (e.g. `[D, 2]`).
        b: Input pairs `[B, T, D, 2]`, float32 (or float16/bfloat16/float64).
        h0: Initial state pairs `[B, D, 2]`, or None.
        reset: Bool `[B, T]`, or None.
        form: ``"fused_recurrent"``, ``"chunk"`` or ``"auto"`` (`choose_triton_form`).
        chunk_size: Steps per chunk of the chunk form; None picks one (`choose_chunk_size`).

    Returns:
        `h` `[B, T, D, 2]` in `b`'s dtype and `h_last` `[B, D, 2]` float32 (float64 for float64).
    """
    return _run(a, b, h0, reset, True, form, chunk_size)


def _run(
    a: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None,
    reset: torch.Tensor | None,
    planar: bool,
    form: str,
    chunk_size: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    if form not in TRITON_FORMS:
        raise ValueError(f"form must be one of {TRITON_FORMS}, got {form!r}")
    bsz, length, dim = b.shape[:3]
    if form == "auto":
        form = choose_triton_form(bsz, length, dim, planar, _num_sms(b.device))
    if chunk_size is None:
        chunk_size = choose_chunk_size(bsz, length, dim, planar, _num_sms(b.device))
    if h0 is not None:
        h0 = h0.to(acc_dtype(a, b))
    return linear_scan_fwd(a, b, h0, reset, planar, form, chunk_size)


def triton_linear_scan(
    a: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None = None,
    reset: torch.Tensor | None = None,
    form: TritonForm = "auto",
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Computes `naive_linear_scan` with the Triton kernels (CUDA, or the CPU under `TRITON_INTERPRET=1`).

    Inputs are not validated here; `linear_scan` checks them before dispatching. Complex tensors
    are passed to the kernels as `torch.view_as_real` views.

    Args:
        a: Decay, broadcastable to `b` (e.g. `[B, T, D]` gated, `[B, 1, D]` or `[D]` time-invariant).
        b: Input, `[B, T, D]`, float32/bfloat16/float16/float64 or complex64/complex128.
        h0: Initial state `[B, D]`, or None for zeros.
        reset: Bool `[B, T]`, or None. Where true the state entering step t is dropped.
        form: ``"fused_recurrent"``, ``"chunk"``, or ``"auto"`` to pick by shape (`choose_triton_form`).
        chunk_size: Steps per chunk of the chunk form; None picks one (`choose_chunk_size`).

    Returns:
        `h` `[B, T, D]` in `b`'s dtype and `h_last` `[B, D]` in the accumulation dtype.

    Raises:
        ValueError: If `form` is not one of `TRITON_FORMS`.
        RuntimeError: For tensors on a device the kernels cannot run on (the CPU without
            `TRITON_INTERPRET=1`).
    """
    if not b.is_complex():
        return _run(a, b, h0, reset, False, form, chunk_size)
    acc = accumulation_dtype(torch.promote_types(a.dtype, b.dtype))
    if not a.is_complex():
        a = a.to(acc)  # a real decay of a complex scan; its gradient comes back as the real part
    pairs = [torch.view_as_real(x.resolve_conj()) for x in (a, b)]
    h0_pairs = None if h0 is None else torch.view_as_real(h0.to(acc).resolve_conj())
    h, h_last = _run(pairs[0], pairs[1], h0_pairs, reset, True, form, chunk_size)
    return torch.view_as_complex(h), torch.view_as_complex(h_last)


def fused_recurrent_linear_scan(
    a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None, reset: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`triton_linear_scan` with the sequential kernel (the single-step kernel when `T = 1`).

    Args:
        a: Decay, broadcastable to `b`.
        b: Input `[B, T, D]`, real or complex.
        h0: Initial state `[B, D]`, or None.
        reset: Bool `[B, T]`, or None.

    Returns:
        `h` `[B, T, D]` and `h_last` `[B, D]`, as `naive_linear_scan`.
    """
    return triton_linear_scan(a, b, h0, reset, form="fused_recurrent")


def chunk_linear_scan(
    a: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None = None,
    reset: torch.Tensor | None = None,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`triton_linear_scan` with the chunked kernels.

    Args:
        a: Decay, broadcastable to `b`.
        b: Input `[B, T, D]`, real or complex.
        h0: Initial state `[B, D]`, or None.
        reset: Bool `[B, T]`, or None.
        chunk_size: Steps per chunk; None picks one (`choose_chunk_size`).

    Returns:
        `h` `[B, T, D]` and `h_last` `[B, D]`, as `naive_linear_scan`.
    """
    return triton_linear_scan(a, b, h0, reset, form="chunk", chunk_size=chunk_size)
