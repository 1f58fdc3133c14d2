"""The Lightning tasks on a tiny synthetic temporal problem, driven by a real Trainer on the CPU."""

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from torchvision import tv_tensors

from tests.tasks.synthetic import RampData
from vidssm.models.predictor import FramePredictor
from vidssm.tasks.callbacks import TrainingReport
from vidssm.tasks.classification import ClipClassification
from vidssm.tasks.online import OnlineClassification
from vidssm.tasks.prediction import NextFramePrediction

SMALL = dict(
    img_size=32, width=32, depth=2, num_heads=2, mlp_dim=64, rep_size=32, frames_per_clip=6, temporal=("rglru", "rglru")
)


def _trainer(tmp_path: Path, steps: int, **kw) -> L.Trainer:
    return L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=L.pytorch.loggers.CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kw,
    )


def test_classification_learns_what_single_frames_cannot_show(tmp_path):
    L.seed_everything(0)
    data = RampData(n=96, batch_size=16)
    task = ClipClassification("trecvit_debug", backbone_args=SMALL, num_classes=2, lr=3e-3, warmup_steps=5)
    trainer = _trainer(tmp_path, 120, check_val_every_n_epoch=100)
    trainer.fit(task, datamodule=data)
    result = trainer.validate(task, datamodule=data, verbose=False)[0]
    assert result["val/top1"] >= 0.9


def test_multiview_scores_average_the_views_probabilities():
    task = ClipClassification("trecvit_debug", backbone_args=SMALL, num_classes=3).eval()
    views = torch.rand(2, 4, 6, 3, 32, 32)
    with torch.no_grad():
        expected = torch.stack([task(views[:, v]).softmax(-1) for v in range(4)], 1).mean(1)
        got = task.predict_step({"video": views}, 0)
    torch.testing.assert_close(got, expected)


def test_cutmix_box_is_the_same_in_every_frame():
    torch.manual_seed(3)
    task = ClipClassification("trecvit_debug", backbone_args=SMALL, num_classes=3, cutmix_alpha=1.0)
    video = torch.rand(4, 6, 3, 32, 32)
    mixed, target = task.mix(tv_tensors.Video(video), torch.tensor([0, 1, 2, 0]))
    changed = (mixed.as_subclass(torch.Tensor) != video).any(dim=2)  # [B, T, H, W]
    assert changed.any()
    assert (changed == changed[:, :1]).all()  # identical mask across frames
    torch.testing.assert_close(target.sum(-1), torch.ones(4))


def test_online_task_scores_every_frame_and_writes_the_curve(tmp_path):
    L.seed_everything(0)
    data = RampData(n=64, batch_size=16)
    task = OnlineClassification("trecvit_debug", backbone_args=SMALL, num_classes=2, lr=3e-3, max_frames=8)
    trainer = _trainer(tmp_path, 40, check_val_every_n_epoch=100, callbacks=[TrainingReport()])
    trainer.fit(task, datamodule=data)
    # the exported model says it was trained online: the streaming runtime treats its per-frame output as calibrated
    meta = json.loads((Path(trainer.log_dir) / "pretrained" / "config.json").read_text())
    assert meta["objective"] == "online"
    out = trainer.test(task, datamodule=data, verbose=False)[0]
    assert {f"test/acc@{t}" for t in range(1, 7)} <= set(out)
    assert out["test/acc@6"] > out["test/acc@1"]  # one frame cannot tell the ramp's sign; six can
    assert {f"test/{m}@{t}" for m in ("conf", "ece") for t in range(1, 7)} <= set(out)
    assert 0 <= out["test/ece@1"] <= 1 and 0.5 <= out["test/conf@1"] <= 1
    csv = Path(trainer.log_dir) / "online_accuracy.csv"
    assert csv.read_text().count("\n") == 7 and (Path(trainer.log_dir) / "online_accuracy.png").stat().st_size > 0
    assert csv.read_text().splitlines()[0] == "frames,accuracy,confidence,ece"
    video = data.val.video[:2]
    with torch.no_grad():
        online = task.eval()(video)
        state = task.backbone.init_state(2)
        for t in range(video.shape[1]):
            logits, state = task.backbone.step(video[:, t], state)
            torch.testing.assert_close(online[:, t], logits, rtol=1e-5, atol=1e-6)


def test_prediction_task_beats_copy_last_and_writes_gif(tmp_path):
    L.seed_everything(0)
    data = RampData(n=64, frames=8, batch_size=16)
    args = dict(SMALL, patch_size=8, frames_per_clip=8)
    # teacher forcing: from scratch, 120 rollout-trained steps land on either side of copy-last with the seed and the
    # torch thread count (0.009-0.032 vs 0.026); teacher-forced ones reach 0.002-0.003 on seeds 0-2, 1 or 2 threads
    task = NextFramePrediction("trecvit_debug", backbone_args=args, lr=3e-3, context=4, train_rollout=False)
    trainer = _trainer(tmp_path, 120, check_val_every_n_epoch=100, callbacks=[TrainingReport()])
    trainer.fit(task, datamodule=data)
    # the exported model keeps the pixel decoder: it streams predicted frames
    exported = FramePredictor.from_pretrained(Path(trainer.log_dir) / "pretrained")
    video = data.val.video[:2]
    with torch.no_grad():
        torch.testing.assert_close(exported.rollout(video[:, :4], 4), task.predictor.eval().rollout(video[:, :4], 4))
    out = trainer.test(task, datamodule=data, verbose=False)[0]
    assert out["test/mse"] < 0.5 * out["test/copy_last_mse"]  # the ramp continues; copying the last frame lags
    folder = Path(trainer.log_dir)
    rows = (folder / "prediction_per_frame.csv").read_text().strip().splitlines()
    assert rows[0] == "future_frame,mse,copy_last_mse,blank_mse,ssim" and len(rows) == 1 + 4
    future = data.val.video[:, 4:]
    blank = [float(v) for v in future.pow(2).mean(dim=(0, 2, 3, 4))]
    assert [float(r.split(",")[3]) for r in rows[1:]] == pytest.approx(blank, rel=1e-4)
    assert (folder / "prediction.gif").read_bytes()[:6] == b"GIF89a"
    with pytest.raises(ValueError, match="nothing to predict"):
        task._step({"video": torch.rand(1, 4, 3, 32, 32)}, "val")


@pytest.mark.parametrize("train_rollout, loss", [(True, "mse"), (False, "mse"), (True, "bce")])
def test_prediction_training_loss_is_the_rollout_or_teacher_forcing(train_rollout, loss):
    torch.manual_seed(0)
    args = dict(SMALL, patch_size=8, frames_per_clip=8)
    task = NextFramePrediction("trecvit_debug", backbone_args=args, context=3, train_rollout=train_rollout, loss=loss)
    task.log = lambda *a, **k: None  # no trainer attached
    video = torch.rand(2, 7, 3, 32, 32)
    # by hand: teacher-forced predictions of frames 1..2, then feed each prediction back through `step`
    predictor = task.predictor
    teacher = predictor(video)  # entry t predicts frame t+1 from the true frames <= t
    if train_rollout:
        state = predictor.init_state(2)
        for t in range(3):
            frame, state = predictor.step(video[:, t], state)
        preds = [frame]
        for _ in range(3):
            frame, state = predictor.step(frame, state)
            preds.append(frame)
        want = torch.cat([teacher[:, :2], torch.stack(preds, 1)], 1)
    else:
        want = teacher[:, :-1]
    if loss == "mse":
        want_loss = torch.nn.functional.mse_loss(want, video[:, 1:])
    else:  # cross-entropy of the pixel probabilities
        y = video[:, 1:]
        want_loss = -(y * want.log() + (1 - y) * (1 - want).log()).mean()
    got = task._step({"video": video}, "train")
    torch.testing.assert_close(got, want_loss)
    got.backward()  # the rollout is differentiable end to end
    grads = {n: p.grad for n, p in task.named_parameters() if "head." not in n}  # the class head is unused
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), grads.keys()
    with pytest.raises(ValueError, match="context must be at least 1"):
        NextFramePrediction("trecvit_debug", backbone_args=args, context=0)
    with pytest.raises(ValueError, match="loss must be one of"):
        NextFramePrediction("trecvit_debug", backbone_args=args, loss="l1")


def test_injected_backbone_must_match_the_data():
    import vidssm

    backbone = vidssm.create_model("trecvit_debug", **SMALL, num_classes=3)
    with pytest.raises(ValueError, match="3 classes, data has 2"):
        ClipClassification(backbone, num_classes=2)
    with pytest.raises(ValueError, match="backbone_args only apply"):
        ClipClassification(backbone, backbone_args={"depth": 1})


def test_grad_checkpointing_flag_reaches_the_backbone_and_keeps_the_loss():
    torch.manual_seed(0)
    video = torch.rand(2, 6, 3, 32, 32)
    losses = []
    for flag in (False, True):
        torch.manual_seed(1)
        task = ClipClassification("trecvit_debug", backbone_args=SMALL, num_classes=2, grad_checkpointing=flag)
        assert task.backbone.grad_checkpointing is flag
        task.log = lambda *a, **k: None
        losses.append(task._step({"video": video, "label": torch.tensor([0, 1])}, "train"))
    torch.testing.assert_close(losses[0], losses[1])


@pytest.mark.parametrize("stage", ["train", "val", "test"])
def test_every_task_logs_loss_and_metrics_the_same_way(stage):
    """Loss per step and epoch while training, per epoch after; metrics per epoch; the bar shows no test numbers."""
    video, label = torch.rand(2, 6, 3, 32, 32), torch.tensor([0, 1])
    tasks = {
        "classification": ClipClassification("trecvit_debug", backbone_args=SMALL, num_classes=5),
        "online": OnlineClassification("trecvit_debug", backbone_args=SMALL, num_classes=5, max_frames=6),
        "prediction": NextFramePrediction("trecvit_debug", backbone_args=dict(SMALL, patch_size=8), context=3),
    }
    metrics = {
        "classification": {"top1": stage != "train", "top5": False},
        "online": {"top1": stage != "train"},
        "prediction": {} if stage == "train" else {"mse": True, "copy_last_mse": False, "ssim": False},
    }
    for kind, task in tasks.items():
        logged = {}
        task.log = lambda name, value, **kw: logged.setdefault(name, kw)  # noqa: B023  (no trainer attached)
        task._step({"video": video, "label": label}, stage)
        loss = dict(prog_bar=stage != "test", on_step=stage == "train", on_epoch=True, batch_size=2)
        want = {f"{stage}/loss": loss} | {
            f"{stage}/{name}": dict(prog_bar=bar, on_epoch=True, on_step=False, batch_size=2)
            for name, bar in metrics[kind].items()
        }
        assert logged == want, kind


@pytest.mark.parametrize("task_cls", [ClipClassification, OnlineClassification])
def test_a_batch_whose_clips_were_all_unreadable_is_skipped_by_evaluation(task_cls):
    """`collate_clips` leaves unreadable clips out of evaluation batches; a batch of only such clips has no video."""
    task = task_cls("trecvit_debug", backbone_args=SMALL, num_classes=3).eval()
    empty = {"video": None, "label": torch.zeros(0, dtype=torch.int64), "index": torch.zeros(0, dtype=torch.int64)}
    assert task.validation_step(dict(empty), 0) is None and task.test_step(dict(empty), 0) is None
    video = torch.rand(2, 6, 3, 32, 32)
    full = {"video": video, "label": torch.tensor([0, 2]), "index": torch.tensor([0, 1])}
    with torch.no_grad():
        assert torch.isfinite(task.test_step(full, 0))  # a batch with clips is still scored
    if task_cls is ClipClassification:
        assert task.predict_step(dict(empty), 0).shape == (0, 3)
        assert task.predict_step(full, 0).shape == (2, 3)
