"""Starting and watching a training run: pretrained init, linear probes, a time budget alone, the uniform-loss
warning, the 3D CNN baseline by injection, and the test confusion matrix."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Timer

import vidssm
from tests.helpers import FIXTURES
from tests.tasks.synthetic import RampData
from vidssm.convert import infer_trecvit_config, init_backbone
from vidssm.models.baselines import Conv3DClassifier
from vidssm.models.trecvit import TRecViT
from vidssm.tasks.callbacks import UniformPredictionWarning
from vidssm.tasks.classification import ClipClassification, read_confusion
from vidssm.tasks.optim import warmup_cosine


def _trainer(**kw) -> L.Trainer:
    """A quiet CPU trainer (no logger unless given, no checkpoints, no sanity check)."""
    defaults = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    return L.Trainer(**{**defaults, "enable_model_summary": False, "num_sanity_val_steps": 0, **kw})


SMALL = dict(img_size=32, width=32, depth=2, num_heads=2, mlp_dim=64, rep_size=32, frames_per_clip=6)


def _backbone_equal(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    for key in sa:
        if not key.startswith("head."):
            torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=key)


def test_init_from_a_vidssm_folder_keeps_the_new_head(tmp_path):
    torch.manual_seed(0)
    pretrained = vidssm.create_model("trecvit_debug", **SMALL, num_classes=5)
    pretrained.save_pretrained(tmp_path / "full")
    pretrained.save_pretrained(tmp_path / "headless", include_head=False)
    for folder in ("full", "headless"):
        torch.manual_seed(1)
        task = ClipClassification("trecvit_debug", SMALL, num_classes=3, init_from=str(tmp_path / folder))
        _backbone_equal(task.backbone, pretrained)
        assert task.backbone.head.cls_head.out_features == 3
    with pytest.raises(FileNotFoundError, match="init_from"):
        ClipClassification("trecvit_debug", SMALL, num_classes=3, init_from=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="width|shape"):  # another architecture
        ClipClassification("trecvit_debug", {**SMALL, "width": 48}, num_classes=3, init_from=str(tmp_path / "full"))


def test_init_from_a_released_npz_with_or_without_its_head(tmp_path):
    with np.load(FIXTURES / "trecvit_visible_ckpt.npz") as data:
        ckpt = {k: data[k] for k in data.files if k != "config"}
    cfg = infer_trecvit_config(ckpt)
    reference = TRecViT(cfg)
    from vidssm.convert import load_trecvit_state

    load_trecvit_state(reference, ckpt)
    headless = {k: v for k, v in ckpt.items() if not k.startswith("decoder/")}
    headless["decoder/pixel_decoder/kernel"] = np.zeros((3, 3), np.float32)  # an MAE decoder: ignored
    np.savez(tmp_path / "mae.npz", **headless)
    np.savez(tmp_path / "sup.npz", **ckpt)
    overrides = {f: getattr(cfg, f) for f in ("img_size", "patch_size", "width", "depth", "num_heads", "mlp_dim")}
    for name in ("mae.npz", "sup.npz"):
        model = TRecViT(infer_trecvit_config(ckpt, num_classes=cfg.num_classes + 2))
        assert init_backbone(model, tmp_path / name) == "trecvit-npz"
        _backbone_equal(model, reference)
    task = ClipClassification("trecvit_debug", overrides, num_classes=7, init_from=str(tmp_path / "mae.npz"))
    _backbone_equal(task.backbone, reference)


def test_init_from_weights_without_rgb_diff_starts_the_difference_tokens_at_zero(tmp_path):
    """RGB-difference tokens on a backbone pretrained without them (a plain folder or a released `.npz`): every other
    weight loads exactly, the difference embedding is zero, so the features equal the pretrained model's; a folder
    that has them loads them as they are."""
    torch.manual_seed(0)
    plain = vidssm.create_model("trecvit_debug", **SMALL, num_classes=5).eval()
    plain.save_pretrained(tmp_path / "plain")
    torch.manual_seed(1)
    model = vidssm.create_model("trecvit_debug", **SMALL, num_classes=3, rgb_diff=3.0).eval()
    assert init_backbone(model, tmp_path / "plain") == "vidssm"
    assert model.rgb_diff is not None and model.rgb_diff.proj.proj.weight.abs().max() == 0
    _backbone_equal(torch.nn.ModuleDict({k: m for k, m in model.named_children() if k != "rgb_diff"}),
                    torch.nn.ModuleDict(dict(plain.named_children())))  # fmt: skip
    video = torch.rand(2, 8, 3, 32, 32)
    torch.testing.assert_close(model(video, output="tokens"), plain(video, output="tokens"))
    with torch.no_grad():
        model.rgb_diff.proj.proj.weight.normal_()
    model.save_pretrained(tmp_path / "diff")
    again = vidssm.create_model("trecvit_debug", **SMALL, num_classes=3, rgb_diff=3.0)
    init_backbone(again, tmp_path / "diff")
    _backbone_equal(again, model)
    with np.load(FIXTURES / "trecvit_visible_ckpt.npz") as data:
        ckpt = {k: data[k] for k in data.files if k != "config"}
    released = TRecViT(infer_trecvit_config(ckpt, rgb_diff=3.0))
    assert init_backbone(released, _write_npz(tmp_path / "sup.npz", ckpt)) == "trecvit-npz"
    assert released.rgb_diff.proj.proj.weight.abs().max() == 0


def _write_npz(path, arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_freeze_backbone_trains_only_the_head_and_keeps_batchnorm_fixed(tmp_path):
    L.seed_everything(0)
    task = ClipClassification(
        "trecvit_debug", {**SMALL, "stem": "conv", "patch_size": 8}, num_classes=2, freeze_backbone=True, lr=1e-2
    )
    before = {k: v.clone() for k, v in task.backbone.state_dict().items()}
    trainable = {n for n, p in task.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("backbone.head.") for n in trainable)
    trainer = _trainer(max_steps=4)
    trainer.fit(task, datamodule=RampData(n=32, batch_size=8))
    after = task.backbone.state_dict()
    for key, value in before.items():  # BatchNorm running statistics included
        if key.startswith("head."):
            continue
        torch.testing.assert_close(after[key], value, rtol=0, atol=0, msg=key)
    assert not torch.equal(after["head.cls_head.weight"], before["head.cls_head.weight"])


def test_time_budget_alone_drives_the_schedule(tmp_path, monkeypatch):
    """With `max_time` alone (used to die: cannot convert float infinity to integer) the cosine follows the
    fraction of the budget that Lightning's Timer reports; the Timer is made to report one second per step."""
    L.seed_everything(0)
    task = ClipClassification("trecvit_debug", SMALL, num_classes=2, warmup_steps=1, lr=1e-3)
    lrs: list[float] = []

    def on_batch_end(trainer, *_):
        lrs.append(trainer.optimizers[0].param_groups[0]["lr"])
        trainer.should_stop = trainer.global_step >= 5

    monkeypatch.setattr(Timer, "time_elapsed", lambda self, stage="train": float(len(lrs)))
    monkeypatch.setattr(Timer, "time_remaining", lambda self, stage="train": 10.0 - len(lrs))
    trainer = _trainer(
        max_time={"minutes": 10}, callbacks=[L.pytorch.callbacks.LambdaCallback(on_train_batch_end=on_batch_end)]
    )
    trainer.fit(task, datamodule=RampData(n=64, batch_size=8))
    # the lr set after optimiser step k (past warm-up) is the cosine at the progress the Timer then reports, k-1 / 10
    expected = [1e-3 * 0.5 * (1 + math.cos(math.pi * k / 10)) for k in range(len(lrs))]
    assert len(lrs) == 5
    assert lrs == pytest.approx(expected, rel=1e-6)
    done = [0.0]
    factor = warmup_cosine(None, 2, progress=lambda: done[0])
    assert factor(0) == 0.5 and factor(5) == 1.0
    done[0] = 0.5
    assert factor(5) == pytest.approx(0.5)
    done[0] = 1.0
    assert factor(5) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="total_steps"):
        warmup_cosine(None, 0)


def test_no_end_at_all_says_which_flag_to_add(tmp_path):
    task = ClipClassification("trecvit_debug", SMALL, num_classes=2)
    trainer = _trainer(max_epochs=-1)
    with pytest.raises(ValueError, match="max_steps"):
        trainer.fit(task, datamodule=RampData(n=16, batch_size=8))


class _Trainer:
    def __init__(self) -> None:
        self.global_step = 0


@pytest.mark.parametrize("losses, warns", [(lambda c: c * 1.01, True), (lambda c: c * 0.6, False)])
def test_uniform_prediction_warning(losses, warns, caplog):
    task = ClipClassification("trecvit_debug", SMALL, num_classes=7, warmup_steps=10)
    assert task.chance_loss == pytest.approx(math.log(7))
    callback, trainer = UniformPredictionWarning(window=5, min_steps=5), _Trainer()
    with pytest.warns(UserWarning, match="uniform") if warns else _no_warning():
        for step in range(40):
            trainer.global_step = step
            callback.on_train_batch_end(trainer, task, {"loss": torch.tensor(losses(task.chance_loss))}, None, step)
    assert callback.warned == warns
    assert not [r for r in caplog.records if "uniform" in r.getMessage()]  # a warning only, not also a log line


@pytest.mark.parametrize(
    "backbone_args, tip",
    [
        ({}, "needs zero-centred pixels"),  # TRecViT's own settings: the recipe's three changes are the tip
        (
            {"pixel_mean": [0.5] * 3, "pixel_std": [0.5] * 3, "rgb_diff": 3.0,
             "temporal": {"conv1d_w_init_variance_scale": 1.0}},
            "already has the small-real-footage recipe's settings",
        ),  # the recipe itself: not told to use what it uses
    ],
)  # fmt: skip
def test_the_uniform_prediction_tip_does_not_recommend_what_the_model_has(backbone_args, tip):
    task = ClipClassification("trecvit_debug", {**SMALL, **backbone_args}, num_classes=7)
    callback, trainer = UniformPredictionWarning(window=5, min_steps=5), _Trainer()
    with pytest.warns(UserWarning) as record:
        for step in range(20):
            trainer.global_step = step
            callback.on_train_batch_end(trainer, task, {"loss": torch.tensor(task.chance_loss)}, None, step)
    (message,) = [str(w.message) for w in record if "uniform" in str(w.message)]
    assert tip in message
    other = "needs zero-centred pixels" if "already" in tip else "already has"
    assert other not in message


class _no_warning:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def test_conv3d_baseline_trains_by_injection_and_writes_the_confusion(tmp_path):
    L.seed_everything(0)
    task = ClipClassification(Conv3DClassifier(num_classes=2, widths=(8, 16)), num_classes=2, lr=3e-3)
    trainer = _trainer(max_steps=3, logger=L.pytorch.loggers.CSVLogger(tmp_path))
    data = RampData(n=32, batch_size=8)
    trainer.fit(task, datamodule=data)
    trainer.test(task, datamodule=data, verbose=False)
    names, confusion = read_confusion(Path(trainer.log_dir) / "confusion_test.csv")
    assert names == ["0", "1"] and confusion.shape == (2, 2) and confusion.sum().item() == len(data.val)
    with pytest.raises(ValueError, match="video"):
        Conv3DClassifier(2)(torch.rand(2, 3, 8, 8))


def test_cpu_time_budget_stops_training_and_drives_the_schedule(monkeypatch):
    """The process is made to spend one CPU second per step: 4 s of budget is 4 steps, the cosine follows it."""
    from vidssm.tasks import callbacks

    L.seed_everything(0)
    clock = [100.0]
    monkeypatch.setattr(callbacks.time, "process_time", lambda: clock[0])
    budget = callbacks.CPUTimeBudget(4)
    lrs: list[float] = []

    def on_batch_end(trainer, *_):
        lrs.append(trainer.optimizers[0].param_groups[0]["lr"])
        clock[0] += 1.0

    task = ClipClassification("trecvit_debug", SMALL, num_classes=2, warmup_steps=0, lr=1e-3)
    trainer = _trainer(
        max_epochs=-1, callbacks=[L.pytorch.callbacks.LambdaCallback(on_train_batch_end=on_batch_end), budget]
    )
    trainer.fit(task, datamodule=RampData(n=64, batch_size=8))
    assert trainer.global_step == 4 and budget.elapsed() == pytest.approx(4.0)
    assert lrs == pytest.approx([1e-3 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)], rel=1e-6)
    restored = callbacks.CPUTimeBudget(4)
    restored.load_state_dict(budget.state_dict())
    assert restored.budget_progress() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="positive"):
        callbacks.CPUTimeBudget(0)


@pytest.mark.parametrize("final", [True, False])
def test_last_checkpoint_holds_the_final_weights_after_a_budget_stop(tmp_path, final):
    """A stop mid-epoch (as a time budget does) after step 5, periodic checkpoints every 3 steps: last.ckpt must be
    step 5 with FinalCheckpoint (it was step 3 without, and `vidssm test` scored those older weights)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from vidssm.tasks.callbacks import FinalCheckpoint

    L.seed_everything(0)
    task = ClipClassification("trecvit_debug", SMALL, num_classes=2)
    stop = L.pytorch.callbacks.LambdaCallback(
        on_train_batch_end=lambda trainer, *_: setattr(trainer, "should_stop", trainer.global_step >= 5)
    )
    ckpt = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=3, save_last=True, save_top_k=-1)
    callbacks = [stop, ckpt, *([FinalCheckpoint()] if final else [])]
    trainer = _trainer(max_epochs=-1, max_time={"minutes": 10}, callbacks=callbacks, enable_checkpointing=True)
    trainer.fit(task, datamodule=RampData(n=128, batch_size=8))  # 16 steps per epoch: the stop is mid-epoch
    saved = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=False)
    assert trainer.global_step == 5
    assert saved["global_step"] == (5 if final else 3)


def test_fit_writes_one_last_checkpoint_and_a_rerun_replaces_it(tmp_path, monkeypatch):
    """A run shorter than `checkpoint_every_n_steps` wrote last.ckpt (FinalCheckpoint) and an identical
    last-v1.ckpt (Lightning's end-of-training `save_last`); a rerun into the same --run_name must replace last.ckpt.
    The earlier run is moved aside, not mixed in (a shorter rerun used to keep the earlier run's later step files)
    nor deleted; `--trainer.default_root_dir` moves the run folder."""
    from vidssm.tasks.cli import train_main

    monkeypatch.chdir(tmp_path)
    common = [
        "fit", "--seed_everything", "0", "--run_name", "r",
        "--model", "vidssm.tasks.classification.ClipClassification", "--model.backbone", "trecvit_debug",
        "--model.backbone_args", "{img_size: 32, width: 32, depth: 1, temporal: [rglru], frames_per_clip: 6}",
        "--data", "tests.tasks.synthetic.RampData", "--data.n", "48", "--data.batch_size", "8",
        "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.num_sanity_val_steps", "0", "--trainer.limit_val_batches", "0",
    ]  # fmt: skip
    folder = tmp_path / "runs" / "vidssm" / "r" / "checkpoints"
    for steps, every, files in ((3, 100, ["last.ckpt"]), (5, 2, ["last.ckpt", "step000002.ckpt", "step000004.ckpt"])):
        train_main([*common, "--trainer.max_steps", str(steps), "--checkpoint_every_n_steps", str(every)])
        assert sorted(p.name for p in folder.iterdir()) == files
        last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=False)
        assert last["global_step"] == steps
        state = last["callbacks"][next(k for k in last["callbacks"] if k.startswith("ModelCheckpoint"))]
        assert Path(state["last_model_path"]).resolve() == (folder / "last.ckpt").resolve()
    with pytest.warns(UserWarning, match="held an earlier run: moved to"):
        train_main([*common, "--trainer.max_steps", "3", "--checkpoint_every_n_steps", "100"])
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]  # none of the 5-step run's step files
    earlier = sorted(p for p in (tmp_path / "runs" / "vidssm").iterdir() if p.name.startswith("r."))
    assert len(earlier) == 2  # the 3-step and the 5-step runs, each whole
    steps = [torch.load(p / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] for p in earlier]
    assert sorted(steps) == [3, 5] and (earlier[0] / "pretrained" / "model.safetensors").is_file()
    tb = sorted(p.name for p in (tmp_path / "runs" / "tensorboard").iterdir())
    assert tb == ["r", *(p.name for p in earlier)]  # the event files are moved aside with their run
    with pytest.raises(SystemExit):  # a rerun that fails to build leaves the earlier run where it was
        train_main([*common, "--trainer.max_steps", "3", "--model.backbone", "trecvit_nope"])
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]
    # `vidssm test` into the run folder keeps the fit's training curves and config next to its own
    fit_rows = (folder.parent / "metrics.csv").read_text()
    assert "train/" in fit_rows.splitlines()[0]
    test = ["test", *common[1:], "--ckpt_path", str(folder / "last.ckpt")]
    for _ in range(2):  # twice: the second test must not copy the first one's rows over the fit's
        train_main(test)
        assert (folder.parent / "metrics_fit.csv").read_text() == fit_rows
        assert "train/" not in (folder.parent / "metrics.csv").read_text().splitlines()[0]
    assert "ckpt_path: null" in (folder.parent / "config_fit.yaml").read_text()
    train_main([*common, "--trainer.max_steps", "2", "--trainer.default_root_dir", "elsewhere"])
    moved = tmp_path / "elsewhere" / "vidssm" / "r" / "checkpoints" / "last.ckpt"
    assert torch.load(moved, weights_only=False)["global_step"] == 2
    assert torch.load(folder / "last.ckpt", weights_only=False)["global_step"] == 3  # runs/ untouched


@pytest.mark.parametrize("max_epochs, expected", [(-1, "Epoch 3"), (5, "Epoch 3/4"), (None, "Epoch 3")])
def test_progress_bar_reads_epoch_n_without_an_epoch_limit(max_epochs, expected):
    """Lightning's bar wrote "Epoch 3/-2" for time- or step-bounded runs (max_epochs=-1); a limit still shows."""
    from vidssm.tasks.callbacks import ProgressBar

    bar = ProgressBar()
    trainer = L.Trainer(max_epochs=max_epochs, max_steps=3, callbacks=[bar], logger=False, enable_checkpointing=False)
    bar._trainer = trainer  # what Lightning's setup does; the description needs nothing else
    assert bar._get_train_description(3).strip() == expected


def test_resume_keeps_the_training_curves_before_the_resumed_step(tmp_path, monkeypatch):
    """Lightning's CSV logger deleted metrics.csv when the resumed run started: the curves before it were lost."""
    import csv

    from vidssm.tasks.cli import train_main

    monkeypatch.chdir(tmp_path)
    common = [
        "fit", "--seed_everything", "0", "--run_name", "r", "--trainer.log_every_n_steps", "1",
        "--model", "vidssm.tasks.classification.ClipClassification", "--model.backbone", "trecvit_debug",
        "--model.backbone_args", "{img_size: 32, width: 32, depth: 1, temporal: [rglru], frames_per_clip: 6}",
        "--data", "tests.tasks.synthetic.RampData", "--data.n", "48", "--data.batch_size", "8",
        "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.num_sanity_val_steps", "0", "--trainer.limit_val_batches", "0", "--checkpoint_every_n_steps", "100",
    ]  # fmt: skip
    metrics = tmp_path / "runs" / "vidssm" / "r" / "metrics.csv"

    def losses() -> dict[int, str]:
        with open(metrics, newline="") as f:
            return {int(r["step"]): r["train/loss_step"] for r in csv.DictReader(f) if r.get("train/loss_step")}

    train_main([*common, "--trainer.max_steps", "3"])
    first = losses()
    assert sorted(first) == [0, 1, 2]
    train_main([*common, "--trainer.max_steps", "5", "--ckpt_path", "last"])
    after = losses()
    assert sorted(after) == [0, 1, 2, 3, 4]
    assert all(float(after[s]) == pytest.approx(float(first[s]), rel=1e-6) for s in first)  # the earlier rows kept
    # a `vidssm test` in between (it replaces metrics.csv with its own rows, keeping the fit's in metrics_fit.csv):
    # the resumed fit continues the fit's curves, not the test's file
    test = ["test", *common[1:], "--ckpt_path", str(metrics.parent / "checkpoints" / "last.ckpt")]
    train_main(test)
    assert "train/" not in metrics.read_text().splitlines()[0]
    train_main([*common, "--trainer.max_steps", "7", "--ckpt_path", "last"])
    again = losses()
    assert sorted(again) == list(range(7))
    assert all(float(again[s]) == pytest.approx(float(after[s]), rel=1e-6) for s in after)


def test_test_without_a_checkpoint_or_run_name_says_so(tmp_path, monkeypatch):
    """`vidssm test` without --ckpt_path scored random weights and printed a normal table, and without --run_name
    wrote into a new version_N folder; both are warned about (and not when given)."""
    import warnings

    from vidssm.tasks.cli import train_main

    monkeypatch.chdir(tmp_path)
    common = [
        "--seed_everything", "0",
        "--model", "vidssm.tasks.classification.ClipClassification", "--model.backbone", "trecvit_debug",
        "--model.backbone_args", "{img_size: 32, width: 32, depth: 1, temporal: [rglru], frames_per_clip: 6}",
        "--data", "tests.tasks.synthetic.RampData", "--data.n", "16", "--data.batch_size", "8",
        "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    train_main(["fit", *common, "--run_name", "r", "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0"])
    with pytest.warns(UserWarning) as caught:
        train_main(["test", *common])
    messages = " ".join(str(w.message) for w in caught)
    assert "without --ckpt_path scores the model as configured" in messages and "without --run_name" in messages
    ckpt = tmp_path / "runs" / "vidssm" / "r" / "checkpoints" / "last.ckpt"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_main(["test", *common, "--run_name", "r", "--ckpt_path", str(ckpt)])
    assert not [w for w in caught if "without --" in str(w.message)]


def test_a_folder_of_empty_folders_is_removed_not_moved_aside(tmp_path):
    """A fit that failed to start leaves empty run folders; the next fit moved them aside with a warning."""
    import warnings

    from vidssm.tasks.cli import _move_aside

    empty = tmp_path / "e2"
    (empty / "checkpoints").mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _move_aside(empty)
    assert not empty.exists() and list(tmp_path.iterdir()) == []
    held = tmp_path / "r"
    (held / "checkpoints").mkdir(parents=True)
    (held / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with pytest.warns(UserWarning, match="held an earlier run: moved to"):
        _move_aside(held)
    assert not held.exists() and [p.name.startswith("r.") for p in tmp_path.iterdir()] == [True]


@pytest.mark.parametrize("budget", ["-5", "0"])
def test_a_non_positive_cpu_budget_is_an_argument_error(tmp_path, monkeypatch, capsys, budget):
    from vidssm.tasks.cli import train_main

    monkeypatch.chdir(tmp_path)
    argv = [
        "fit", "--model", "vidssm.tasks.classification.ClipClassification", "--model.backbone", "trecvit_debug",
        "--data", "tests.tasks.synthetic.RampData", "--cpu_time_budget", budget,
    ]  # fmt: skip
    with pytest.raises(SystemExit):
        train_main(argv)
    err = capsys.readouterr().err
    assert "--cpu_time_budget must be a positive number" in err and "Traceback" not in err
