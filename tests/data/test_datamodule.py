"""Data modules: build/check in prepare_data, datasets in setup, batches of the right form, bad files totalled."""

from __future__ import annotations

import warnings

import lightning as L
import pytest
import torch

from vidssm.data.datamodule import BadVideoReport, MovingMNISTDataModule, VideoDataModule
from vidssm.data.datasets import BadVideoWarning, EmptyDatasetError
from vidssm.data.writers import write_video

from .conftest import random_frames


@pytest.fixture(scope="module")
def folder_dataset(tmp_path_factory):
    import numpy as np

    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("folder")
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("cat", "dog"):
            for i in range(n):
                write_video(root / split / cls / f"{i}.mp4", random_frames(rng, 12, 32, 48), bframes=2, gop_size=4)
    (root / "train" / "dog" / "broken.mp4").write_bytes(b"\x00" * 300)
    return root


class _MeanPixel(L.LightningModule):
    """Smallest classifier: mean colour of the clip → logits."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)

    def _step(self, batch):
        video = batch["video"]
        assert video.dim() == 5 and set(batch) == {"video", "label", "index"}
        logits = self.fc(video.mean(dim=(1, 3, 4)))
        return torch.nn.functional.cross_entropy(logits, batch["label"])

    def training_step(self, batch, batch_idx):
        return self._step(batch)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._step(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_folder_datamodule_trains_and_reports_bad_files(folder_dataset, tmp_path):
    label_map = tmp_path / "labels.json"
    dm = VideoDataModule(
        str(folder_dataset),
        num_frames=4,
        stride=2,
        img_size=32,
        batch_size=7,
        num_workers=0,
        label_map_file=str(label_map),
        pin_memory=False,
    )
    dm.prepare_data()
    trainer = L.Trainer(
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[BadVideoReport()],
        num_sanity_val_steps=0,
    )
    with pytest.warns(BadVideoWarning) as record:
        trainer.fit(_MeanPixel(), datamodule=dm)
    messages = [str(w.message) for w in record]
    assert any("broken.mp4" in m and "replacement" in m for m in messages)
    epoch_reports = [m for m in messages if "(train): skipped" in m]  # the same broken file: said once, not 3 times
    assert len(epoch_reports) == 1, messages
    assert "epoch 0 (train): skipped 1 samples" in epoch_reports[0] and "broken.mp4" in epoch_reports[0]
    assert dm.label_map.names == ["cat", "dog"] and label_map.exists() and dm.num_classes == 2
    assert len(dm.datasets["train"]) == 7 and len(dm.datasets["val"]) == 4
    assert trainer.callback_metrics["data/bad_videos_train"] == 1


def test_evaluation_leaves_a_bad_video_out_instead_of_scoring_a_replacement(folder_dataset, tmp_path):
    """Validation / test must score each readable clip once: a replacement for a bad video would count another
    clip twice (a new user's 14-clip test set with 2 bad files gave a 14-clip confusion matrix)."""
    import shutil

    root = tmp_path / "set"
    shutil.copytree(folder_dataset, root)
    (root / "val" / "cat" / "broken.mp4").write_bytes(b"\x00" * 300)
    (root / "val" / "cat" / "broken2.mp4").write_bytes(b"\x11" * 300)  # next to broken.mp4: a batch of two bad
    dm = VideoDataModule(str(root), num_frames=4, img_size=32, batch_size=2, num_workers=0, pin_memory=False)
    dm.setup("validate")
    with pytest.warns(BadVideoWarning, match="left out of the evaluation"):
        batches = [dm.on_before_batch_transfer(b, 0) for b in dm.val_dataloader()]
    indices = [i for b in batches for i in b["index"].tolist()]
    readable = [i for i, r in enumerate(dm.datasets["val"].records) if "broken" not in r.path.name]
    assert sorted(indices) == readable  # each readable clip once, no stand-ins
    assert sum(b["label"].numel() for b in batches) == 4
    assert sum(dm.pop_bad_files("unknown").values()) == 2
    assert any(b["video"] is None and b["label"].numel() == 0 for b in batches)  # a batch of two bad files
    assert all(b["video"].shape[0] == b["label"].numel() for b in batches if b["video"] is not None)


def test_bad_video_report_warns_again_only_for_new_files(tmp_path):
    from collections import Counter
    from types import SimpleNamespace

    dm = VideoDataModule(str(tmp_path), num_workers=0)
    logged = []
    module = SimpleNamespace(log=lambda name, value, **_: logged.append((name, value)))
    report = BadVideoReport()
    epochs = [Counter({"a.mp4": 2}), Counter({"a.mp4": 1}), Counter({"a.mp4": 1, "b.mp4": 1}), Counter()]
    said = []
    for epoch, bad in enumerate(epochs):
        dm.bad_files["train"] = bad
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            report._report(SimpleNamespace(datamodule=dm, current_epoch=epoch), module, "train")
        said.append([str(w.message) for w in record])
    assert [len(s) for s in said] == [1, 0, 1, 0]  # a.mp4 at epoch 0; nothing new at 1; b.mp4 new at 2
    assert "skipped 2 samples from 1" in said[0][0] and "later epochs warn only for new files" in said[0][0]
    assert "b.mp4" in said[2][0] and "later epochs" not in said[2][0]
    assert logged == [("data/bad_videos_train", v) for v in (2.0, 1.0, 2.0, 0.0)]  # the count: every epoch


def test_folder_datamodule_multiview_test_batches(folder_dataset):
    dm = VideoDataModule(
        str(folder_dataset),
        num_frames=4,
        img_size=32,
        test_clips=2,
        test_crops=3,
        batch_size=2,
        num_workers=1,
        pin_memory=False,
    )
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    assert batch["video"].shape == (2, 6, 4, 3, 32, 32)  # [B, N*M, T, 3, H, W]


def test_prepare_data_checks_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VideoDataModule(str(tmp_path / "nope")).prepare_data()
    with pytest.raises(FileNotFoundError, match="train_annotations"):
        VideoDataModule(str(tmp_path), format="csv", train_annotations=str(tmp_path / "t.csv")).prepare_data()


def test_empty_split_is_a_clear_error(tmp_path):
    (tmp_path / "train.csv").write_text("path,label\nmissing.mp4,0\n")
    dm = VideoDataModule(
        str(tmp_path),
        format="csv",
        train_annotations=str(tmp_path / "train.csv"),
        val_annotations=str(tmp_path / "train.csv"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadVideoWarning)
        with pytest.raises(ValueError, match="none of the 1 rows"):
            dm.setup("fit")


@pytest.mark.parametrize("labels", [False, True])
def test_empty_video_folder_names_the_folder_and_extensions(tmp_path, labels):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not a video")
    dm = VideoDataModule(str(tmp_path), format="folder", labels=labels, num_workers=0)
    with pytest.raises(EmptyDatasetError, match="no video files found in") as info:
        dm.setup("fit")
    message = str(info.value)
    assert str(tmp_path / "train") in message and ".mp4" in message and ".mkv" in message
    assert "annotation rows" not in message


def test_unlabelled_val_split_of_a_labelled_train_split_is_an_error(tmp_path):
    # A val CSV whose label column is misnamed reads as unlabelled; it must not reach cross_entropy as -1.
    (tmp_path / "train.csv").write_text("path,label\na.mp4,cat\nb.mp4,dog\n")
    (tmp_path / "val.csv").write_text("path,class\nc.mp4,cat\n")
    dm = VideoDataModule(
        str(tmp_path),
        format="csv",
        train_annotations=str(tmp_path / "train.csv"),
        val_annotations=str(tmp_path / "val.csv"),
    )
    with pytest.raises(ValueError, match=r"val\.csv: 1 of 1 videos have no label .*c\.mp4"):
        dm.setup("validate")


def test_moving_mnist_datamodule(tmp_path):
    dm = MovingMNISTDataModule(
        str(tmp_path / "mm"), num_train=16, num_val=4, num_test=4, batch_size=4, num_workers=2, pin_memory=False
    )
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (4, 16, 3, 32, 32) and batch["video"].dtype == torch.float32
    assert 0 <= batch["video"].min() and batch["video"].max() <= 1 and dm.num_classes == 4
    pred = MovingMNISTDataModule(
        str(tmp_path / "pred"), kind="prediction", num_train=4, num_val=2, num_test=2, batch_size=2, num_workers=0
    )
    pred.prepare_data()
    pred.setup("fit")
    batch = next(iter(pred.val_dataloader()))
    assert batch["video"].shape == (2, 20, 3, 64, 64) and (batch["label"] == -1).all() and pred.num_classes == 0


def test_evaluation_needs_the_train_split_only_without_a_saved_label_map(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        write_video(tmp_path / f"{name}.mp4", random_frames(rng, 6, 32, 32))
    (tmp_path / "train.csv").write_text("path,label\na.mp4,zebra\nb.mp4,ant\n")
    (tmp_path / "test.csv").write_text("path,label\nc.mp4,zebra\n")
    label_map = tmp_path / "label_map.json"
    common = dict(format="csv", num_frames=4, num_workers=0, label_map_file=str(label_map),
                  test_annotations=str(tmp_path / "test.csv"))  # fmt: skip
    fit = VideoDataModule(str(tmp_path), train_annotations=str(tmp_path / "train.csv"), **common)
    fit.setup("test")  # the label map is written by the first setup that reads the train split
    assert label_map.is_file() and fit.datasets["test"].records[0].label == fit.label_map.names.index("zebra")
    (tmp_path / "train.csv").unlink()  # evaluating later: the train annotations are gone, the label map is not
    test = VideoDataModule(str(tmp_path), **common)
    test.setup("test")
    assert test.label_map.names == fit.label_map.names
    assert test.datasets["test"].records[0].label == fit.datasets["test"].records[0].label
    no_map = VideoDataModule(str(tmp_path), format="csv", num_workers=0, test_annotations=str(tmp_path / "test.csv"))
    with pytest.raises(ValueError, match=r"train_annotations FILE \(as in fit\) or --data.init_args.label_map_file"):
        no_map.setup("test")
