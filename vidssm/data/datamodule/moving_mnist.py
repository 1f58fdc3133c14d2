"""`MovingMNISTDataModule`: the Moving-MNIST sets (`vidssm.data.moving_mnist`), built in `prepare_data`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from vidssm.data.annotations import LabelMap
from vidssm.data.datamodule.video import VideoDataModule
from vidssm.data.moving_mnist import DIRECTIONS, MovingMNISTConfig, build_moving_mnist


class MovingMNISTDataModule(VideoDataModule):
    """Moving-MNIST sets (`vidssm.data.moving_mnist`), built in `prepare_data` when missing.

    The temporal set's label is a motion direction, so training flips are off and crops keep the whole frame.

    Args:
        root: Folder of the built set (created if missing).
        kind: `"temporal"` or `"prediction"`.
        seed: Build seed (and DataLoader seed).
        num_train: Train clips.
        num_val: Validation clips.
        num_test: Test clips.
        image_size: Frame side of the built videos.
        num_frames: Frames per clip (built and read).
        batch_size: Batch size.
        num_workers: DataLoader workers.
        pin_memory: Pin host memory (None: when CUDA is available).
        persistent_workers: Keep workers between epochs.
        backend: Video reader backend.
    """

    def __init__(
        self,
        root: str,
        kind: str = "temporal",
        seed: int = 0,
        num_train: int | None = None,
        num_val: int | None = None,
        num_test: int | None = None,
        image_size: int | None = None,
        num_frames: int | None = None,
        batch_size: int = 32,
        num_workers: int = 2,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
        backend: str = "decord",
    ) -> None:
        overrides = {
            k: v
            for k, v in dict(
                seed=seed,
                num_train=num_train,
                num_val=num_val,
                num_test=num_test,
                image_size=image_size,
                num_frames=num_frames,
            ).items()
            if v is not None
        }
        cfg = MovingMNISTConfig.prediction(**overrides) if kind == "prediction" else MovingMNISTConfig(**overrides)
        cfg.validate()
        root_path = Path(root)
        super().__init__(
            root=str(root_path),
            format="csv",
            train_annotations=str(root_path / "train.csv"),
            val_annotations=str(root_path / "val.csv"),
            test_annotations=str(root_path / "test.csv"),
            num_frames=cfg.num_frames,
            stride=1,
            img_size=cfg.image_size,
            scale=(1.0, 1.0),
            hflip=False,
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers,
            backend=backend,
            seed=seed,
        )
        self.config = cfg
        self.save_hyperparameters(
            {**asdict(cfg), "root": root, "batch_size": batch_size, "num_workers": num_workers, "backend": backend}
        )
        self.label_map = LabelMap(DIRECTIONS) if kind == "temporal" else None

    def prepare_data(self) -> None:
        """Builds the set under `root` unless this exact build is already there."""
        build_moving_mnist(self.opts.root, self.config)

    @property
    def num_classes(self) -> int:
        """4 directions for the temporal set; 0 for the prediction set."""
        return len(self.label_map) if self.label_map is not None else 0
