"""Token masks and patch targets of masked video autoencoding (VideoMAE, Tong et al. 2022, Sec. 3).

    tube    one random spatial mask per clip, repeated in every frame (VideoMAE's tube masking, Sec. 3.3)
    random  an independent random mask in every frame

Both mask exactly `round(ratio * N)` of the `N` patches of every frame. A mask is drawn from
`(seed, epoch, index)` alone, so a clip gets the same mask in any worker, batch or resumed run.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange

MASK_TYPES = ("tube", "random")


def num_masked(num_patches: int, ratio: float) -> int:
    """Patches masked per frame, `round(ratio * N)`.

    Raises:
        ValueError: `ratio` leaves no patch masked or none visible.
    """
    count = round(ratio * num_patches)
    if not 0 < count < num_patches:
        raise ValueError(
            f"mask_ratio {ratio} masks {count} of {num_patches} patches per frame; it must leave at least one "
            "patch masked and one visible"
        )
    return count


def sample_mask(
    num_frames: int, num_patches: int, ratio: float, mask_type: str, rng: np.random.Generator
) -> torch.Tensor:
    """One clip's mask `[T, N]`, bool, true where a patch is masked.

    Args:
        num_frames: Frames `T`.
        num_patches: Patches per frame `N`.
        ratio: Fraction of each frame's patches masked.
        mask_type: `"tube"` or `"random"` (see the module docstring).
        rng: Where the randomness comes from.

    Raises:
        ValueError: Unknown `mask_type`, or a `ratio` that masks nothing or everything.
    """
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
    count = num_masked(num_patches, ratio)
    rows = 1 if mask_type == "tube" else num_frames
    order = np.argsort(rng.random((rows, num_patches)), axis=1)  # a random permutation per row
    mask = np.zeros((rows, num_patches), dtype=bool)
    np.put_along_axis(mask, order[:, :count], True, axis=1)
    return torch.from_numpy(np.broadcast_to(mask, (num_frames, num_patches)).copy())


def batch_masks(
    indices: list[int],
    num_frames: int,
    num_patches: int,
    ratio: float,
    mask_type: str,
    seed: int,
    epoch: int = 0,
) -> torch.Tensor:
    """Masks `[B, T, N]` of the clips with dataset indices `indices`, each drawn from `(seed, epoch, index)`."""
    return torch.stack(
        [
            sample_mask(num_frames, num_patches, ratio, mask_type, np.random.default_rng([seed, epoch, int(i)]))
            for i in indices
        ]
    )


def patchify(video: torch.Tensor, patch: tuple[int, int]) -> torch.Tensor:
    """Patches `[B, T, N, ph pw 3]` (row-major grid) of `video` `[B, T, 3, H, W]`."""
    ph, pw = patch
    return rearrange(video, "b t c (gh ph) (gw pw) -> b t (gh gw) (ph pw c)", ph=ph, pw=pw)


def unpatchify(patches: torch.Tensor, grid: tuple[int, int], patch: tuple[int, int]) -> torch.Tensor:
    """`video` `[B, T, 3, H, W]` from patches `[B, T, N, ph pw 3]` (inverse of `patchify`)."""
    (gh, gw), (ph, pw) = grid, patch
    return rearrange(patches, "b t (gh gw) (ph pw c) -> b t c (gh ph) (gw pw)", gh=gh, gw=gw, ph=ph, pw=pw)


def normalize_patches(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Each patch `[..., P]` minus its mean, over its standard deviation: VideoMAE's `norm_pix_loss` target
    (pixels of all channels of a patch together, unbiased variance)."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, unbiased=True, keepdim=True)
    return (patches - mean) / (var + eps).sqrt()


def denormalize_patches(pred: torch.Tensor, patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Predicted normalised patches `[..., P]` back to pixels with the true patches' mean and std (for pictures)."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, unbiased=True, keepdim=True)
    return pred * (var + eps).sqrt() + mean


def mask_pixels(video: torch.Tensor, mask: torch.Tensor, patch: tuple[int, int]) -> torch.Tensor:
    """`video` `[B, T, 3, H, W]` with the pixels of masked patches (`mask` `[B, T, N]`) set to 0."""
    gh, gw = video.shape[-2] // patch[0], video.shape[-1] // patch[1]
    keep = (~mask).to(video.dtype).unflatten(-1, (gh, gw))  # [B, T, gh, gw]
    keep = keep.repeat_interleave(patch[0], dim=-2).repeat_interleave(patch[1], dim=-1)  # [B, T, H, W]
    return video * keep[:, :, None]
