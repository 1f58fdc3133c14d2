"""`VideoDataModule`: video classification data in any annotation format.

Batches are dicts: `video` `[B, T, 3, H, W]` float in [0, 1] (`[B, V, T, 3, H, W]` for multi-view testing, whose
logits the evaluation averages over `V`), `label` `[B]`, `index` `[B]`. Skipped bad files travel with the batch
from the workers and are totalled per stage by `on_before_batch_transfer`; add `BadVideoReport` to the Trainer's
callbacks to get the per-epoch count as a warning and a logged metric.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import torch
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

from vidssm.data.annotations import FOLDER_FORMATS, FORMATS, LabelMap, load_annotations, load_unlabelled
from vidssm.data.datamodule.epoch_shuffle import EpochShuffle
from vidssm.data.datamodule.seeding import seed_worker
from vidssm.data.datasets import VideoClipDataset, collate_clips
from vidssm.data.samplers import MultiViewSampler, RandomClipSampler, UniformSampler
from vidssm.data.transforms import SpatialMultiCrop, eval_transform, train_transform


def _check_labelled(records: list, labelled: bool, source: str) -> None:
    """A validation split of a labelled set (`labelled`: a label map, or labelled train records) must be labelled
    too: an unlabelled video (label -1) would otherwise surface far away as `cross_entropy`'s "Target -1 is out of
    bounds"."""
    if not labelled:
        return
    unlabelled = [r for r in records if r.label < 0]
    if unlabelled:
        raise ValueError(
            f"{source}: {len(unlabelled)} of {len(records)} videos have no label (first: {unlabelled[0].path}) "
            "but the train split is labelled; is the label column missing or misnamed?"
        )


class VideoDataModule(L.LightningDataModule):
    """Video classification data in any supported annotation format.

    Args:
        root: Video folder.
        format: Annotation format (`vidssm.data.annotations.FORMATS`).
        train_annotations: Train annotation file (UCF101/HMDB51: split-file folder; folder format: unused).
        val_annotations: Validation annotation file.
        test_annotations: Test annotation file (None: use the validation set for testing).
        labels_file: SSv2 `labels.json`.
        fold: UCF101/HMDB51 fold.
        label_map_file: JSON label map: reused when it exists, else written from the train split.
        num_frames: Frames per clip `T`.
        stride: Frame step within a clip (dense sampling).
        sampling: `"dense"` (contiguous clip with `stride`) or `"uniform"` (spread over the whole video).
        img_size: Output side.
        resize: Short side before the evaluation centre crop (None: `img_size`).
        scale: Train random-resized-crop area range.
        hflip: Random horizontal flips in training (off for direction-dependent labels).
        test_clips: Temporal views per test video `N`.
        test_crops: Spatial views per test clip `M` (1: centre crop).
        mean: Normalisation mean (None: leave [0, 1]; models normalise themselves).
        std: Normalisation std.
        batch_size: Batch size.
        num_workers: DataLoader workers.
        pin_memory: Pin host memory (None: when CUDA is available).
        persistent_workers: Keep workers between epochs (when `num_workers > 0`).
        backend: Video reader backend.
        decode_size: `(H, W)` to scale frames to while decoding (None: stored size).
        on_error: `"skip"` bad videos (warn; training draws a replacement clip, validation / test / predict leave
            the clip out, so each readable clip is scored once) or `"raise"`.
        seed: Seed of the DataLoader shuffling and worker seeds.
        labels: False reads the videos without labels (every `label` is -1, `num_classes` is 0; self-supervised
            pretraining): with `format="folder"` every video under `root` (or `root/<split>`), at any depth, with no
            annotation file; with the other formats the annotation files' labels are ignored.
    """

    def __init__(
        self,
        root: str,
        format: str = "folder",
        train_annotations: str | None = None,
        val_annotations: str | None = None,
        test_annotations: str | None = None,
        labels_file: str | None = None,
        fold: int = 1,
        label_map_file: str | None = None,
        num_frames: int = 16,
        stride: int = 2,
        sampling: str = "dense",
        img_size: int = 224,
        resize: int | None = None,
        scale: tuple[float, float] = (0.25, 1.0),
        hflip: bool = True,
        test_clips: int = 1,
        test_crops: int = 1,
        mean: tuple[float, float, float] | None = None,
        std: tuple[float, float, float] | None = None,
        batch_size: int = 8,
        num_workers: int = 2,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
        backend: str = "decord",
        decode_size: tuple[int, int] | None = None,
        on_error: str = "skip",
        seed: int = 0,
        labels: bool = True,
    ) -> None:
        opts = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__()
        if format not in FORMATS:
            raise ValueError(f"unknown annotation format {format!r}; choose one of {FORMATS}")
        if sampling not in ("dense", "uniform"):
            raise ValueError(f"sampling must be 'dense' or 'uniform', got {sampling!r}")
        self.opts = SimpleNamespace(**opts)  # what the code reads; `hparams` is what gets logged
        self.save_hyperparameters(opts)
        self.label_map: LabelMap | None = None
        self.datasets: dict[str, VideoClipDataset] = {}
        self.bad_files: dict[str, Counter[str]] = {}

    # Files ---------------------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Checks that the video folder and annotation files exist (nothing is downloaded)."""
        hp = self.opts
        if not Path(hp.root).is_dir():
            raise FileNotFoundError(f"video folder {hp.root} does not exist")
        for name in ("train_annotations", "val_annotations", "test_annotations", "labels_file"):
            p = getattr(hp, name)
            if p is not None and not Path(p).exists():
                raise FileNotFoundError(f"{name} {p} does not exist")

    def _train_records(self, stage: str | None):
        """The train split's records (they define the class ids); evaluating without them or a saved label map
        is an error naming both flags."""
        hp = self.opts
        needs_file = hp.format not in FOLDER_FORMATS
        if hp.labels and hp.train_annotations is None and needs_file and stage not in ("fit", None):
            raise ValueError(
                f"{stage}: the class ids of format {hp.format!r} come from the training annotations; give "
                "--data.init_args.train_annotations FILE (as in fit) or --data.init_args.label_map_file FILE "
                "(written by fit when it is set)"
            )
        return self._records("train", hp.train_annotations)

    def _records(self, split: str, annotation: str | None):
        hp = self.opts
        if not hp.labels:
            return load_unlabelled(hp.format, hp.root, annotation, split, hp.labels_file, hp.fold)
        records, found = load_annotations(
            hp.format, hp.root, annotation, split, hp.labels_file, hp.fold, label_map=self.label_map
        )
        if self.label_map is None and found is not None:
            self.label_map = found
        return records

    def setup(self, stage: str | None = None) -> None:
        """Builds the datasets of `stage` (`fit`, `validate`, `test`, `predict` or None for all)."""
        hp = self.opts
        if hp.labels and hp.label_map_file and Path(hp.label_map_file).exists():
            self.label_map = LabelMap.load(hp.label_map_file)
        if stage in ("fit", None) or self.label_map is None:
            train_records = self._train_records(stage)  # defines the label map
        else:  # evaluation with a saved label map: the class ids are known, the train split is not needed
            train_records = []
        if hp.label_map_file and self.label_map is not None and not Path(hp.label_map_file).exists():
            self.label_map.save(hp.label_map_file)
        if stage in ("fit", None):
            self.datasets["train"] = self._dataset(train_records, train=True, source=hp.train_annotations or hp.root)
        if stage in ("fit", "validate", None):
            val_records = self._records("val", hp.val_annotations)
            labelled = self.label_map is not None or any(r.label >= 0 for r in train_records)
            _check_labelled(val_records, labelled, hp.val_annotations or hp.root)
            self.datasets["val"] = self._dataset(val_records, False, hp.val_annotations)
        if stage in ("test", "predict", None):
            ann = hp.test_annotations or hp.val_annotations
            self.datasets["test"] = self._dataset(self._records("test", ann), False, ann, multiview=True)

    def _dataset(self, records, train: bool, source: str | None, multiview: bool = False) -> VideoClipDataset:
        hp = self.opts
        if train:
            sampler = (
                RandomClipSampler(hp.num_frames, hp.stride)
                if hp.sampling == "dense"
                else UniformSampler(hp.num_frames, jitter=True)
            )
            transform = train_transform(hp.img_size, tuple(hp.scale), hflip=hp.hflip, mean=hp.mean, std=hp.std)
        else:
            clips = hp.test_clips if multiview else 1
            sampler = (
                MultiViewSampler(hp.num_frames, hp.stride, clips)
                if hp.sampling == "dense"
                else UniformSampler(hp.num_frames)
            )
            if multiview and hp.test_crops > 1:
                transform = SpatialMultiCrop(hp.img_size, hp.test_crops, mean=hp.mean, std=hp.std)
            else:
                transform = eval_transform(hp.img_size, hp.resize, mean=hp.mean, std=hp.std)
        return VideoClipDataset(
            records,
            sampler,
            transform,
            backend=hp.backend,
            decode_size=hp.decode_size,
            on_error=hp.on_error,
            replace_bad=train,  # evaluation leaves a bad video out instead of scoring another clip twice
            source=str(source or hp.root),
            seed=hp.seed,
        )

    @property
    def num_classes(self) -> int:
        """Classes of the label map; read from `label_map_file` or the train annotations when asked before
        `setup` (the training CLI links it into the model when both are built)."""
        hp = self.opts
        if not hp.labels:
            return 0
        if self.label_map is None and hp.label_map_file and Path(hp.label_map_file).exists():
            self.label_map = LabelMap.load(hp.label_map_file)
        if self.label_map is None:
            self._records("train", hp.train_annotations)
        if self.label_map is None:
            raise RuntimeError("num_classes: the train annotations define no label map (integer labels?)")
        return len(self.label_map)

    # Loaders -------------------------------------------------------------------------------------------------
    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        hp = self.opts
        if split not in self.datasets:
            raise RuntimeError(f"no {split} dataset: call setup() for the right stage first")
        # The train loader is stateful, so a resumed run continues mid-epoch exactly where it stopped.
        loader_cls = StatefulDataLoader if split == "train" else DataLoader
        return loader_cls(
            self.datasets[split],
            batch_size=hp.batch_size,
            sampler=EpochShuffle(len(self.datasets[split]), hp.seed, with_epoch=True) if shuffle else None,
            drop_last=shuffle,
            num_workers=hp.num_workers,
            pin_memory=torch.cuda.is_available() if hp.pin_memory is None else hp.pin_memory,
            persistent_workers=hp.persistent_workers and hp.num_workers > 0,
            collate_fn=collate_clips,
            worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(hp.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    # Bad-file accounting -------------------------------------------------------------------------------------
    def on_before_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Moves the batch's skipped paths into `bad_files[stage]`; the batch keeps only tensors."""
        bad = batch.pop("bad_files", [])
        if bad:
            stage = "unknown"
            trainer = getattr(self, "trainer", None)
            if trainer is not None and trainer.state.stage is not None:
                stage = trainer.state.stage.value
            self.bad_files.setdefault(stage, Counter()).update(bad)
        return batch

    def pop_bad_files(self, stage: str) -> Counter[str]:
        """Skipped paths (with counts) seen in `stage` since the last call; resets them."""
        return self.bad_files.pop(stage, Counter())
