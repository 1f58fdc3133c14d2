"""Masked video pretraining: the masks, mask correctness (no masked pixel reaches any prediction), the loss, the
exported backbone's streaming, and the two recipes (pretrain on unlabelled videos, fine-tune / probe from it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vidssm.data.datamodule import VideoDataModule
from vidssm.data.writers import write_video
from vidssm.hub import from_pretrained
from vidssm.models import create_model
from vidssm.tasks.classification import ClipClassification
from vidssm.tasks.cli import train_main
from vidssm.tasks.masking import batch_masks, mask_pixels, normalize_patches, patchify, sample_mask, unpatchify
from vidssm.tasks.pretraining import MaskedVideoPretraining

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "configs" / "experiments"
# 32x32 frames, 8x8 patches: a 4x4 grid of 16 patches per frame
DEBUG = dict(patch_size=8, depth=2, frames_per_clip=4)


@pytest.mark.parametrize("mask_type", ["tube", "random"])
@pytest.mark.parametrize("ratio", [0.9, 0.5, 0.25])
def test_mask_ratio_is_exact_in_every_frame(mask_type, ratio):
    mask = sample_mask(6, 49, ratio, mask_type, np.random.default_rng(0))
    assert mask.shape == (6, 49) and mask.dtype == torch.bool
    assert (mask.sum(dim=1) == round(ratio * 49)).all()


def test_tube_mask_is_the_same_in_every_frame_and_random_is_not():
    tube = sample_mask(8, 64, 0.75, "tube", np.random.default_rng(1))
    assert (tube == tube[:1]).all()
    rand = sample_mask(8, 64, 0.75, "random", np.random.default_rng(1))
    assert not (rand == rand[:1]).all()


def test_masks_are_seeded_per_sample():
    a = batch_masks([3, 7], 4, 16, 0.9, "tube", seed=0, epoch=2)
    assert torch.equal(a[0], batch_masks([3], 4, 16, 0.9, "tube", seed=0, epoch=2)[0])  # batch-independent
    assert torch.equal(a[1], batch_masks([9, 7], 4, 16, 0.9, "tube", seed=0, epoch=2)[1])
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a, batch_masks([3, 7], 4, 16, 0.9, "tube", seed=0, epoch=3))
    assert not torch.equal(a, batch_masks([3, 7], 4, 16, 0.9, "tube", seed=1, epoch=2))


@pytest.mark.parametrize("ratio", [0.0, 0.01, 1.0])
def test_a_ratio_that_masks_nothing_or_everything_raises(ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        sample_mask(2, 16, ratio, "tube", np.random.default_rng(0))
    with pytest.raises(ValueError, match="mask_ratio"):
        MaskedVideoPretraining("trecvit_debug", backbone_args=DEBUG, mask_ratio=ratio)


def test_unknown_mask_type_raises():
    with pytest.raises(ValueError, match="mask_type"):
        MaskedVideoPretraining("trecvit_debug", backbone_args=DEBUG, mask_type="block")


def test_patches_round_trip_and_normalise_like_the_formula():
    video = torch.rand(2, 3, 3, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    patches = patchify(video, (8, 8))
    assert patches.shape == (2, 3, 16, 8 * 8 * 3)
    assert torch.equal(unpatchify(patches, (4, 4), (8, 8)), video)
    # patch (row 1, col 2) of frame 1 of clip 0, channel-last as in patchify
    ref = video[0, 1, :, 8:16, 16:24].permute(1, 2, 0).reshape(-1)
    assert torch.equal(patches[0, 1, 1 * 4 + 2], ref)
    norm = normalize_patches(patches)[0, 1, 6]
    expected = (ref - ref.mean()) / (((ref - ref.mean()) ** 2).sum() / (ref.numel() - 1) + 1e-6).sqrt()
    torch.testing.assert_close(norm, expected, rtol=1e-12, atol=1e-12)


def test_mask_pixels_zeroes_exactly_the_masked_patches():
    video = torch.rand(1, 2, 3, 32, 32) + 0.1
    mask = batch_masks([0], 2, 16, 0.5, "random", seed=0)
    out = patchify(mask_pixels(video, mask, (8, 8)), (8, 8))  # [1, 2, 16, P]
    assert (out[mask] == 0).all() and (out[~mask] == patchify(video, (8, 8))[~mask]).all()


@pytest.mark.parametrize("model", ["trecvit_debug", "trecvit_debug_conv", "trecvit_debug_rgbdiff"])
@pytest.mark.parametrize("mask_type", ["tube", "random"])
def test_masked_pixels_reach_no_prediction_and_visible_ones_do(model, mask_type):
    """The prediction of every patch (so the loss of every masked patch) is unchanged when the pixels under the mask
    change; changing one visible patch changes the predictions of masked patches (in train mode: a conv stem's
    BatchNorm batch statistics must not leak masked pixels either)."""
    torch.manual_seed(0)
    task = MaskedVideoPretraining(model, backbone_args=DEBUG, mask_type=mask_type, mask_ratio=0.75).train()
    video = torch.rand(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    mask = task.masks(torch.tensor([0, 1]), 4, epoch=0)
    pred = task(video, mask)
    noise = torch.rand(video.shape, generator=torch.Generator().manual_seed(2))
    under_mask = mask_pixels(noise, ~mask, (8, 8)) - mask_pixels(video, ~mask, (8, 8))  # nonzero only under the mask
    assert torch.equal(task(video + under_mask, mask), pred)
    b, t, n = (~mask).nonzero()[0].tolist()  # one visible patch
    row, col = divmod(n, 4)
    rows, cols = slice(8 * row, 8 * row + 8), slice(8 * col, 8 * col + 8)
    changed = video.clone()
    changed[b, t, :, rows, cols] = 1 - changed[b, t, :, rows, cols]
    diff = (task(changed, mask) - pred).abs().amax(dim=-1)  # [B, T, N]
    assert diff[b, t][mask[b, t]].min() > 0  # every masked patch of that frame sees it through attention


def test_building_the_task_leaves_batchnorm_statistics_and_mode_alone():
    task = MaskedVideoPretraining("trecvit_debug_conv", backbone_args=DEBUG)
    stats = {k: v for k, v in task.backbone.state_dict().items() if "running_" in k}
    assert stats and task.backbone.training
    assert all((v == 0).all() if "mean" in k else (v == 1).all() for k, v in stats.items())


def test_loss_is_the_mse_of_masked_normalised_patches():
    torch.manual_seed(0)
    task = MaskedVideoPretraining("trecvit_debug", backbone_args=DEBUG, mask_ratio=0.75, image_every_n_steps=0)
    batch = {"video": torch.rand(2, 4, 3, 32, 32), "index": torch.tensor([5, 6]), "label": torch.tensor([-1, -1])}
    loss = task._step(batch, "val")
    mask = task.masks(batch["index"], 4, epoch=0)
    pred = task(batch["video"], mask).double()
    target = normalize_patches(patchify(batch["video"].double(), (8, 8)))
    expected = sum(((pred[i] - target[i]) ** 2).mean() for i in zip(*mask.nonzero(as_tuple=True), strict=True))
    torch.testing.assert_close(loss.double(), expected / mask.sum(), rtol=1e-5, atol=1e-7)


def test_backbone_without_patch_tokens_raises_a_clear_error():
    with pytest.raises(ValueError, match="no per-patch input tokens"):
        MaskedVideoPretraining("late_rglru_resnet18", backbone_args={"img_size": 32, "embedding": "tokens", "depth": 1})


# --- the recipes, through the CLI -----------------------------------------------------------------------------------

TINY = {"img_size": 32, "patch_size": 8, "width": 32, "depth": 2, "num_heads": 2, "mlp_dim": 64, "rep_size": 32,
        "frames_per_clip": 4}  # fmt: skip
SHRINK = [
    "--trainer.max_steps", "2", "--trainer.max_time", "null", "--trainer.enable_progress_bar", "false",
    "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0",
    "--model.init_args.backbone_args", json.dumps(TINY), "--model.init_args.warmup_steps", "0",
    "--data.init_args.num_frames", "4", "--data.init_args.batch_size", "2", "--data.init_args.num_workers", "0",
]  # fmt: skip


def _video(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    frames = np.zeros((6, 32, 32, 3), np.uint8)
    frames[:] = rng.integers(0, 255, 3, dtype=np.uint8)
    for t in range(6):
        frames[t, 8:16, 2 * t : 2 * t + 8] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames, fps=6)


def test_unlabelled_folder_needs_no_annotation_file(tmp_path):
    for i, rel in enumerate(["a.mp4", "deep/er/b.mp4", "c.avi"]):
        _video(tmp_path / "videos" / rel, i)
    (tmp_path / "videos" / "notes.txt").write_text("not a video")
    dm = VideoDataModule(str(tmp_path / "videos"), labels=False, num_frames=4, img_size=32, num_workers=0, batch_size=2)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.num_classes == 0 and dm.label_map is None
    assert len(dm.datasets["train"]) == 3 and len(dm.datasets["val"]) == 3
    assert {r.label for r in dm.datasets["train"].records} == {-1}
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (2, 4, 3, 32, 32) and (batch["label"] == -1).all()


def test_unlabelled_mode_drops_the_labels_of_an_annotation_file(tmp_path):
    for i in range(2):
        _video(tmp_path / f"v{i}.mp4", i)
    (tmp_path / "train.csv").write_text("path,label\nv0.mp4,left\nv1.mp4,right\n")
    dm = VideoDataModule(
        str(tmp_path), format="csv", train_annotations=str(tmp_path / "train.csv"),
        val_annotations=str(tmp_path / "train.csv"), labels=False, num_frames=4, img_size=32, num_workers=0,
    )  # fmt: skip
    dm.setup("fit")
    assert dm.num_classes == 0 and [r.label for r in dm.datasets["train"].records] == [-1, -1]
    labelled = VideoDataModule(str(tmp_path), format="csv", train_annotations=str(tmp_path / "train.csv"))
    assert labelled.num_classes == 2


def test_pretrain_then_finetune_and_probe_through_the_recipes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for i in range(4):
        for c in ("left", "right"):
            _video(tmp_path / "videos" / c / f"{c}{i}.mp4", 10 * i + len(c))
    pretrain = [
        "fit", "--config", str(EXPERIMENTS / "mae_pretrain_tiny.yaml"), *SHRINK,
        "--data.init_args.root", "videos", "--model.init_args.image_every_n_steps", "1",
    ]  # fmt: skip
    # the CSV logger's run folder is the one `TrainingReport` exports to: keep one logger for it
    train_main([*pretrain, "--trainer.logger", json.dumps({"class_path": "lightning.pytorch.loggers.CSVLogger",
                "init_args": {"save_dir": "runs", "name": "vidssm", "version": "mae_pretrain_tiny"}})])  # fmt: skip
    run = tmp_path / "runs" / "vidssm" / "mae_pretrain_tiny"
    folder = run / "pretrained"
    meta = json.loads((folder / "config.json").read_text())
    assert meta["has_head"] is False
    assert meta["config"]["readout"] == "patch_mean"  # the features the loss trained
    assert not any(k.startswith("head.cls_head.") for k in load_file(str(folder / "model.safetensors")))
    assert sorted(p.name for p in (run / "reconstructions").glob("*.png")) == ["step000000.png", "step000001.png"]

    # the exported backbone streams exactly: step after step equals the offline forward
    model = from_pretrained(folder)
    video = torch.rand(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        offline = model(video, output="tokens")
        state, steps = model.init_state(2), []
        for t in range(4):
            out, state = model.step(video[:, t], state, output="tokens")
            steps.append(out)
    torch.testing.assert_close(torch.stack(steps, 1), offline, rtol=1e-5, atol=1e-5)

    # a linear probe from it: only the head trains, the backbone is the pretrained one
    finetune = [
        "fit", "--config", str(EXPERIMENTS / "finetune_from_mae_tiny.yaml"), *SHRINK, "--data.init_args.root", "videos",
        "--model.init_args.freeze_backbone", "true", "--model.init_args.lr", "1e-2",
        "--model.init_args.backbone_args", json.dumps({**TINY, "readout": "patch_mean"}),
    ]  # fmt: skip
    train_main([*finetune, "--trainer.logger", json.dumps({"class_path": "lightning.pytorch.loggers.CSVLogger",
                "init_args": {"save_dir": "runs", "name": "vidssm", "version": "probe"}})])  # fmt: skip
    probe = load_file(str(tmp_path / "runs" / "vidssm" / "probe" / "pretrained" / "model.safetensors"))
    pretrained = load_file(str(folder / "model.safetensors"))
    backbone_keys = [k for k in pretrained if not k.startswith("head.")]
    assert backbone_keys and all(torch.equal(probe[k], pretrained[k]) for k in backbone_keys)
    assert not torch.equal(probe["head.pre_logits.weight"], pretrained["head.pre_logits.weight"])
    assert probe["head.cls_head.weight"].shape[0] == 2  # the data's two classes


def test_patch_mean_readout_is_the_mean_of_the_final_patch_tokens_and_streams_exactly():
    torch.manual_seed(0)
    model = create_model("trecvit_debug", **DEBUG, readout="patch_mean").double().eval()
    video = torch.rand(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        tokens = model(video, output="tokens")  # [B, T, 1+N, D] after the final norm
        head = model.head
        per_frame = torch.tanh(head.pre_logits(tokens[:, :, 1:].sum(dim=2) / (tokens.shape[2] - 1)))
        expected = head.cls_head(per_frame.mean(dim=1))
        torch.testing.assert_close(model(video), expected, rtol=1e-12, atol=1e-12)
        cls = create_model("trecvit_debug", **DEBUG).double().eval()
        cls.load_state_dict(model.state_dict())
        assert not torch.allclose(cls(video), expected)  # the CLS readout is another input
        model, video = model.float(), video.float()  # streaming keeps float32 readouts
        state = model.init_state(2)
        for t in range(4):
            logits, state = model.step(video[:, t], state)
        torch.testing.assert_close(logits, model(video), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(logits.double(), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="readout"):
        create_model("trecvit_debug", readout="mean")


def _masked_video_folder(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    task = MaskedVideoPretraining("trecvit_debug", backbone_args=DEBUG)
    return task.backbone.save_pretrained(tmp_path / "mae")


def test_probe_input_changes_with_the_backbone_weights_and_not_with_the_head(tmp_path):
    """What a frozen-backbone probe reads (the per-frame `readout_token` of the final tokens) is a function of the
    backbone's weights: perturbing the head leaves it bit for bit, perturbing any backbone layer changes it."""
    folder = _masked_video_folder(tmp_path)
    args = {**DEBUG, "readout": "patch_mean"}
    task = ClipClassification("trecvit_debug", args, num_classes=3, init_from=str(folder), freeze_backbone=True)
    model = task.backbone.eval()
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        n for n, _ in model.named_parameters() if n.startswith("head.")
    }
    video = torch.rand(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(2))

    def probe_input() -> torch.Tensor:
        with torch.no_grad():
            return model.readout_token(model.forward_features(video))  # [B, T, D]

    before = probe_input()
    logits = model(video).detach()
    with torch.no_grad():
        for p in model.head.parameters():
            p.add_(torch.randn_like(p))
    assert not torch.allclose(model(video), logits)  # the head did change
    assert torch.equal(probe_input(), before)
    for name in ("spatial.1.mlp.fc2.weight", "temporal.0", "tokenizer"):
        with torch.no_grad():
            params = [p for n, p in model.named_parameters() if n.startswith(name)]
            saved = [p.clone() for p in params]
            for p in params:
                p.add_(0.1 * torch.randn_like(p))
        assert params and (probe_input() - before).abs().max() > 1e-3, name
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
    assert torch.equal(probe_input(), before)


def test_a_probe_of_the_untrained_cls_token_of_a_masked_video_backbone_raises(tmp_path):
    folder = _masked_video_folder(tmp_path)
    assert json.loads((folder / "config.json").read_text())["config"]["readout"] == "patch_mean"
    with pytest.raises(ValueError, match="readout: patch_mean"):
        ClipClassification("trecvit_debug", DEBUG, num_classes=3, init_from=str(folder), freeze_backbone=True)
    ClipClassification("trecvit_debug", DEBUG, num_classes=3, init_from=str(folder))  # fine-tuning trains it all
    # a supervised folder (CLS readout) probed with its own readout is accepted, with another one it is not
    supervised = create_model("trecvit_debug", **DEBUG).save_pretrained(tmp_path / "supervised")
    ClipClassification("trecvit_debug", DEBUG, num_classes=3, init_from=str(supervised), freeze_backbone=True)
    with pytest.raises(ValueError, match="readout: cls"):
        ClipClassification(
            "trecvit_debug", {**DEBUG, "readout": "patch_mean"}, num_classes=3, init_from=str(supervised),
            freeze_backbone=True,
        )  # fmt: skip
