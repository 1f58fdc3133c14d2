"""`tools/memorise_check.py`: the training loop fits a few fixed clips and reports a well-formed curve."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import memorise_check  # noqa: E402

from vidssm.models.baselines import Conv3DClassifier  # noqa: E402


def test_memorise_fits_fixed_clips_and_logs_every_n_steps():
    gen = torch.Generator().manual_seed(0)
    video = torch.rand(6, 4, 3, 16, 16, generator=gen)
    label = torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(0)
    model = Conv3DClassifier(3, widths=(8, 16))
    curve = memorise_check.memorise(model, video, label, steps=40, batch_size=6, lr=3e-3, weight_decay=0.0,
                                    every=10, seed=0)
    assert [c["step"] for c in curve] == [10, 20, 30, 40]
    assert curve[-1]["train_top1"] == 1.0  # six random clips are memorised
    assert curve[-1]["loss"] < curve[0]["loss"]


def test_markdown_lists_every_result():
    results = {"camera/c3d/lr0.001": dict(set="camera", variant="c3d", clips=32, lr=1e-3,
                                         curve=[dict(step=10, loss=1.0, train_top1=0.5, cpu_seconds=1.0)])}
    md = memorise_check._markdown(results)
    assert "| camera | c3d | 32 | 0.001 | 10 | 1.000 | 50.0% | 10: 50% |" in md


def test_every_option_has_help_text():
    parser = memorise_check._parser()
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert {a.dest for a in options} >= {"set", "clips", "steps", "batch_size", "lr", "variants", "data", "out"}
    for action in options:
        assert action.help and len(action.help) > 10, action.option_strings
    text = parser.format_help()
    assert "number of training clips to memorise" in text and "(default: 60)" in text


def test_load_clips_samples_the_recipes_16_consecutive_frames(tmp_path):
    """The recipe reads 16 consecutive frames (stride 1); the data module's default stride 2 spans 31 frames and
    repeated frames of every 16-frame real-motion clip, with a ShortVideoWarning per clip."""
    import warnings

    import numpy as np

    from vidssm.data.writers import write_video

    for name in ("a", "b"):  # frame t is filled with grey level 12 t: the clip's frames tell which were read
        frames = np.stack([np.full((32, 32, 3), 12 * t, np.uint8) for t in range(16)])
        write_video(tmp_path / f"{name}.mp4", frames, options={"crf": "0"})
    (tmp_path / "train.csv").write_text("path,label\na.mp4,pan\nb.mp4,zoom\n")
    (tmp_path / "test.csv").write_text("path,label\na.mp4,pan\n")
    from vidssm.data.datasets import ShortVideoWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", ShortVideoWarning)
        video, label = memorise_check.load_clips(tmp_path, clips=2, img_size=16, num_frames=16)
    assert video.shape == (2, 16, 3, 16, 16) and sorted(label.tolist()) == [0, 1]
    levels = video[0].mean(dim=(1, 2, 3)) * 255  # [T]
    assert torch.allclose(levels, 12 * torch.arange(16.0), atol=2.0)  # frames 0..15, each once
