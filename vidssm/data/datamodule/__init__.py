"""Lightning data modules and what their loaders need, one file each.

- `video.py`: `VideoDataModule`, video classification data in any annotation format.
- `moving_mnist.py`: `MovingMNISTDataModule`, the Moving-MNIST sets built in `prepare_data`.
- `bad_videos.py`: `BadVideoReport`, the per-epoch count of skipped unreadable videos.
- `epoch_shuffle.py`: `EpochShuffle`, the stateful `(seed, epoch)` shuffle that resumes mid-epoch exactly.
- `seeding.py`: `seed_worker`, numpy and `random` seeding in DataLoader workers.

`vidssm.data.datamodule.VideoDataModule` and `vidssm.data.datamodule.MovingMNISTDataModule` are the `class_path`s
the YAML configs name.
"""

from vidssm.data.datamodule.bad_videos import BadVideoReport
from vidssm.data.datamodule.epoch_shuffle import EpochShuffle
from vidssm.data.datamodule.moving_mnist import MovingMNISTDataModule
from vidssm.data.datamodule.seeding import seed_worker
from vidssm.data.datamodule.video import VideoDataModule

__all__ = ["BadVideoReport", "EpochShuffle", "MovingMNISTDataModule", "VideoDataModule", "seed_worker"]
