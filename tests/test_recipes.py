"""The standard-dataset recipes (`configs/experiments/{ssv2,k400,ucf101_finetune}_trecvit_base.yaml`) run: each
trains 2 steps on a tiny fake dataset in its annotation format, with the model shrunk by command-line overrides
only, and the UCF101 recipe starts from a released-layout `.npz` and re-heads to the dataset's classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.cli_helpers import instantiate
from tests.helpers import FIXTURES
from vidssm.convert import infer_trecvit_config, load_trecvit_state
from vidssm.data.writers import write_video
from vidssm.models.trecvit import TRecViT
from vidssm.tasks.cli import train_main

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "configs" / "experiments"
FRAMES, SIDE = 12, 32
# The fixture checkpoint's architecture (tests/fixtures/trecvit_visible_ckpt.npz): 32x32 frames, 16x16 patches.
TINY = {"img_size": 32, "patch_size": 16, "width": 32, "depth": 2, "num_heads": 2, "mlp_dim": 64, "rep_size": 48,
        "frames_per_clip": 4}  # fmt: skip
# A laptop CPU instead of 8 GPUs; one tiny batch; nothing else of the recipe changes.
SHRINK = [
    "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.strategy", "auto",
    "--trainer.precision", "32-true", "--trainer.enable_progress_bar", "false",
    "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "1",
    "--model.init_args.backbone_args", json.dumps(TINY),
    "--data.init_args.num_frames", "4", "--data.init_args.img_size", str(SIDE),
    "--data.init_args.batch_size", "2", "--data.init_args.num_workers", "0",
]  # fmt: skip


def _video(path: Path, seed: int) -> None:
    """A tiny moving-square clip (every class looks different enough for a decoder, not for a model)."""
    rng = np.random.default_rng(seed)
    frames = np.zeros((FRAMES, SIDE, SIDE, 3), np.uint8)
    frames[:] = rng.integers(0, 255, 3, dtype=np.uint8)
    for t in range(FRAMES):
        frames[t, 8:16, t : t + 8] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames, fps=12)


def _ssv2(root: Path) -> list[str]:
    templates = ["Pushing [something] from left to right", "Putting [something] on [something]", "Tearing [something]"]
    labels = {t.replace("[", "").replace("]", ""): str(i) for i, t in enumerate(templates)}
    root.mkdir(parents=True)
    (root / "labels.json").write_text(json.dumps(labels))
    splits = {"train": range(6), "validation": range(6, 9)}
    for split, ids in splits.items():
        items = [{"id": str(i), "template": templates[i % 3], "label": "x", "placeholders": []} for i in ids]
        (root / f"{split}.json").write_text(json.dumps(items))
        for i in ids:
            _video(root / "videos" / f"{i}.webm", i)
    return [
        "--data.init_args.root", str(root / "videos"), "--data.init_args.labels_file", str(root / "labels.json"),
        "--data.init_args.train_annotations", str(root / "train.json"),
        "--data.init_args.val_annotations", str(root / "validation.json"),
    ]  # fmt: skip


def _kinetics(root: Path) -> list[str]:
    classes = ["abseiling", "playing guitar", "zumba"]
    root.mkdir(parents=True)
    for split, ids in (("train", range(6)), ("validate", range(6, 9))):
        rows = ["label,youtube_id,time_start,time_end,split"]
        for i in ids:
            yid = f"vid{i:08d}"
            rows.append(f"{classes[i % 3]},{yid},{10 * i},{10 * i + 10},{split}")
            _video(root / "videos" / split / f"{yid}_{10 * i:06d}_{10 * i + 10:06d}.mp4", i)
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return [
        "--data.init_args.root", str(root / "videos"),
        "--data.init_args.train_annotations", str(root / "train.csv"),
        "--data.init_args.val_annotations", str(root / "validate.csv"),
    ]  # fmt: skip


UCF_CLASSES = ["ApplyEyeMakeup", "Basketball", "YoYo"]


def _ucf101(root: Path) -> list[str]:
    splits = root / "ucfTrainTestlist"
    splits.mkdir(parents=True)
    (splits / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(UCF_CLASSES)))
    for split, groups in (("train", (1, 2)), ("test", (3,))):
        lines = []
        for c, name in enumerate(UCF_CLASSES):
            for g in groups:
                rel = f"{name}/v_{name}_g{g:02d}_c01.avi"
                _video(root / "videos" / rel, 10 * c + g)
                lines.append(f"{rel} {c + 1}" if split == "train" else rel)
        (splits / f"{split}list01.txt").write_text("\n".join(lines) + "\n")
    return [
        "--data.init_args.root", str(root / "videos"),
        "--data.init_args.train_annotations", str(splits), "--data.init_args.val_annotations", str(splits),
    ]  # fmt: skip


def _npz(path: Path) -> dict[str, np.ndarray]:
    """A released-layout TRecViT checkpoint (the tiny fixture, with its 5-class K400-style head)."""
    with np.load(FIXTURES / "trecvit_visible_ckpt.npz") as data:
        ckpt = {k: data[k] for k in data.files if k != "config"}
    np.savez(path, **ckpt)
    return ckpt


def _fit(tmp_path: Path, recipe: str, data: list[str], *extra: str) -> Path:
    run = tmp_path / "runs" / "vidssm" / "recipe"
    argv = ["fit", "--config", str(EXPERIMENTS / recipe), *data, *SHRINK, "--trainer.max_steps", "2",
            "--checkpoint_every_n_steps", "2", "--run_name", "recipe", *extra]  # fmt: skip
    assert train_main(argv) == 0
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 2
    assert (run / "pretrained").is_dir()
    return run


SSV2_CLASSES = ["Pushing something from left to right", "Putting something on something", "Tearing something"]


@pytest.mark.parametrize(
    ("recipe", "build", "classes"),
    [
        ("ssv2_trecvit_base.yaml", _ssv2, SSV2_CLASSES),
        ("k400_trecvit_base.yaml", _kinetics, ["abseiling", "playing guitar", "zumba"]),
    ],
)
def test_recipe_trains_two_steps_on_its_format(tmp_path, monkeypatch, recipe, build, classes):
    monkeypatch.chdir(tmp_path)
    run = _fit(tmp_path, recipe, build(tmp_path / "data"))
    saved = json.loads((run / "pretrained" / "config.json").read_text())
    assert saved["config"]["num_classes"] == len(classes)  # linked from the data module
    assert saved["labels"] == classes  # read from the format's annotations


def test_ucf101_recipe_fine_tunes_a_released_npz_with_a_new_head(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _ucf101(tmp_path / "data")
    ckpt = _npz(tmp_path / "trecvit_B_k400.npz")
    init = ["--model.init_args.init_from", str(tmp_path / "trecvit_B_k400.npz")]

    # As built by the recipe: the npz's backbone, exactly; a new head with UCF101's (here 3) classes.
    cli = instantiate(["--config", str(EXPERIMENTS / "ucf101_finetune_trecvit_base.yaml"), *data, *SHRINK, *init])
    backbone = cli.model.backbone
    assert backbone.head.cls_head.out_features == len(UCF_CLASSES)
    reference = TRecViT(infer_trecvit_config(ckpt, frames_per_clip=TINY["frames_per_clip"]))
    load_trecvit_state(reference, ckpt)
    ours, theirs = backbone.state_dict(), reference.state_dict()
    backbone_keys = [k for k in theirs if not k.startswith("head.")]
    assert len(backbone_keys) > 50
    for key in backbone_keys:
        torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=0, msg=key)

    run = _fit(tmp_path, "ucf101_finetune_trecvit_base.yaml", data, *init)
    saved = json.loads((run / "pretrained" / "config.json").read_text())
    assert saved["config"]["num_classes"] == len(UCF_CLASSES)
    assert saved["labels"] == UCF_CLASSES
