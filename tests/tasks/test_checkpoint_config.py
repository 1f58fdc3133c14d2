"""A Lightning checkpoint records its backbone's full resolved config, so it rebuilds its own model after the
registry's defaults change; checkpoints written before (only `backbone_args`) still load."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vidssm.models import registry
from vidssm.models.registry import ModelEntry
from vidssm.tasks.classification import ClipClassification
from vidssm.tasks.cli import train_main

ARGS = dict(img_size=32, width=32, depth=1, temporal=["rglru"], frames_per_clip=6)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The `last.ckpt` of a one-step `vidssm fit`."""
    folder = tmp_path_factory.mktemp("fit")
    args = [
        "fit", "--seed_everything", "0", "--run_name", "r",
        "--model", "vidssm.tasks.classification.ClipClassification", "--model.backbone", "trecvit_debug",
        "--model.backbone_args", json.dumps(ARGS),
        "--data", "tests.tasks.synthetic.RampData", "--data.n", "8", "--data.batch_size", "8",
        "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false", "--trainer.max_steps", "1",
        "--trainer.num_sanity_val_steps", "0", "--trainer.limit_val_batches", "0",
    ]  # fmt: skip
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        train_main(args)
    finally:
        os.chdir(cwd)
    return folder / "runs" / "vidssm" / "r" / "checkpoints" / "last.ckpt"


@pytest.fixture
def changed_defaults(monkeypatch):
    """`trecvit_debug` registered with other defaults (3 → 2 layers, 2 → 4 heads, 64 → 96 MLP, 48 → 40 readout)."""
    entry = registry.model_entry("trecvit_debug")
    config = replace(entry.config, depth=2, num_heads=4, mlp_dim=96, rep_size=40)
    monkeypatch.setitem(registry._REGISTRY, "trecvit_debug", ModelEntry("trecvit_debug", entry.model_class, config))


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_checkpoint_holds_the_resolved_config(checkpoint):
    hparams = _load(checkpoint)["hyper_parameters"]
    config = hparams["backbone_config"]
    assert config["depth"] == 1 and config["num_heads"] == 2 and config["rep_size"] == 48 and config["num_classes"] == 2
    assert config["temporal"]["kind"] == ["rglru"] and config["temporal"]["conv1d_width"] == 4
    assert hparams["backbone_args"]["depth"] == 1  # what the user gave is kept as given


def test_checkpoint_rebuilds_its_model_after_the_defaults_change(checkpoint, changed_defaults):
    task = ClipClassification.load_from_checkpoint(checkpoint, map_location="cpu")
    saved = _load(checkpoint)["state_dict"]
    assert task.backbone.config.rep_size == 48 and task.backbone.config.num_heads == 2
    for key, value in task.state_dict().items():
        torch.testing.assert_close(value, saved[key], rtol=0, atol=0, msg=key)
    assert ClipClassification("trecvit_debug", backbone_args=ARGS, num_classes=2).backbone.config.rep_size == 40


def test_vidssm_test_rebuilds_its_model_after_the_defaults_change(checkpoint, changed_defaults, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [
        "test", "--model", "vidssm.tasks.classification.ClipClassification", "--model.backbone", "trecvit_debug",
        "--data", "tests.tasks.synthetic.RampData", "--data.n", "8", "--data.batch_size", "8",
        "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false", "--ckpt_path", str(checkpoint),
    ]  # fmt: skip
    assert train_main(args) == 0  # before: "size mismatch" / "Missing key(s)" loading the state dict
    assert (tmp_path / "runs" / "vidssm").is_dir()


def test_old_checkpoints_without_the_config_still_load(checkpoint, tmp_path):
    ckpt = _load(checkpoint)
    del ckpt["hyper_parameters"]["backbone_config"]
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    task = ClipClassification.load_from_checkpoint(old, map_location="cpu")
    assert task.backbone.config.depth == 1 and task.backbone.config.rep_size == 48
    assert task.hparams["backbone_config"]["depth"] == 1  # recorded again for the next save


def test_backbone_args_still_apply_over_a_given_config():
    base = ClipClassification("trecvit_debug", backbone_args=ARGS, num_classes=2).hparams["backbone_config"]
    task = ClipClassification("trecvit_debug", backbone_args={"mlp_dim": 80}, num_classes=3, backbone_config=base)
    config = task.backbone.config
    assert (config.mlp_dim, config.depth, config.width, config.num_classes) == (80, 1, 32, 3)
    with pytest.raises(ValueError, match="only apply to a backbone given by name"):
        ClipClassification(task.backbone, backbone_config=base)
