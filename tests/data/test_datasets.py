"""Datasets return the right frames, skip bad files with a warning naming them, and fail clearly when empty."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vidssm.data.annotations import VideoRecord
from vidssm.data.datasets import (
    BadVideoWarning,
    EmptyDatasetError,
    VideoClipDataset,
    check_records,
    collate_clips,
)
from vidssm.data.readers import VideoReadError
from vidssm.data.samplers import MultiViewSampler, RandomClipSampler, UniformSampler
from vidssm.data.transforms import SpatialMultiCrop, eval_transform

GOOD_NAMES = ["h264_bframes_mp4", "mpeg4_bframes_avi", "vp9_webm", "h264_bframes_mkv"]


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_clips_are_the_sampled_frames(clips, backend):
    records = [VideoRecord(clips[n].path, i) for i, n in enumerate(GOOD_NAMES)]
    ds = VideoClipDataset(records, UniformSampler(5), backend=backend)
    for i, name in enumerate(GOOD_NAMES):
        sample = ds[i]
        ref = clips[name].frames
        idx = UniformSampler(5)(len(ref))[0]
        expected = torch.from_numpy(ref[idx]).permute(0, 3, 1, 2).float() / 255
        assert sample["video"].shape == (5, 3, 32, 64) and sample["label"] == i and sample["index"] == i
        torch.testing.assert_close(sample["video"], expected, rtol=0, atol=0)


def test_frame_ranges_are_respected(clips):
    ref = clips["h264_bframes_mp4"].frames
    ds = VideoClipDataset([VideoRecord(clips["h264_bframes_mp4"].path, 0, 10, 14)], RandomClipSampler(4))
    for _ in range(5):
        torch.testing.assert_close(ds[0]["video"], torch.from_numpy(ref[10:14]).permute(0, 3, 1, 2).float() / 255)


def test_random_clips_follow_torch_seed(clips):
    ds = VideoClipDataset([VideoRecord(clips["h264_bframes_mp4"].path, 0)], RandomClipSampler(3, 2))
    torch.manual_seed(1)
    a = [ds[0]["video"] for _ in range(4)]
    torch.manual_seed(1)
    b = [ds[0]["video"] for _ in range(4)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(a[0], x) for x in a[1:])


def test_multiview_shape(clips):
    ds = VideoClipDataset(
        [VideoRecord(clips["h264_bframes_mp4"].path, 0)], MultiViewSampler(4, 2, num_clips=2), SpatialMultiCrop(32, 3)
    )
    assert ds[0]["video"].shape == (6, 4, 3, 32, 32)  # 2 clips x 3 crops


@pytest.mark.parametrize("kind", ["garbage", "text", "cut"])
def test_bad_file_is_skipped_with_warning_naming_it(clips, broken, kind):
    good = VideoRecord(clips["h264_bframes_mp4"].path, 0)
    ds = VideoClipDataset([VideoRecord(broken[kind], 1), good], UniformSampler(4), eval_transform(32))
    with pytest.warns(BadVideoWarning, match=broken[kind].name):
        sample = ds[0]
    assert sample["label"] == 0 and sample["index"] == 1 and sample["bad_files"] == [str(broken[kind])]
    assert sample["video"].shape == (4, 3, 32, 32)
    assert ds.bad_files[str(broken[kind])] == 1


def test_truncated_file_is_skipped_unless_allowed(truncated, clips):
    records = [VideoRecord(truncated.path, 1), VideoRecord(clips["vp9_webm"].path, 0)]
    with pytest.warns(BadVideoWarning, match="truncated.mp4: truncated or corrupt"):
        assert VideoClipDataset(records, UniformSampler(4))[0]["label"] == 0
    assert VideoClipDataset(records, UniformSampler(4), allow_truncated=True)[0]["label"] == 1


def test_fail_fast_raises_naming_the_file(broken, clips):
    ds = VideoClipDataset(
        [VideoRecord(broken["garbage"], 0), VideoRecord(clips["vp9_webm"].path, 0)], UniformSampler(4), on_error="raise"
    )
    with pytest.raises(VideoReadError, match="garbage.mp4"):
        ds[0]


def test_missing_rows_dropped_up_front_and_empty_is_an_error(broken, clips):
    records = [
        VideoRecord(broken["missing"], 0),
        VideoRecord(broken["zero"], 0),
        VideoRecord(clips["vp9_webm"].path, 1),
    ]
    with pytest.warns(BadVideoWarning, match="2 of 3 rows.*does_not_exist.mp4.*zero.mp4"):
        ds = VideoClipDataset(records, UniformSampler(4), source="val.csv")
    assert len(ds) == 1
    with pytest.raises(EmptyDatasetError, match="val.csv: none of the 2 rows"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BadVideoWarning)
            VideoClipDataset(records[:2], UniformSampler(4), source="val.csv")
    with pytest.raises(EmptyDatasetError, match="no annotation rows"):
        check_records([], "train.csv")


def test_all_bad_gives_up_with_a_clear_error(broken):
    ds = VideoClipDataset([VideoRecord(broken["garbage"], 0)], UniformSampler(2), max_retries=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadVideoWarning)
        with pytest.raises(VideoReadError, match="4 unreadable videos in a row"):
            ds[0]


def test_workers_report_bad_files_through_batches(clips, broken):
    records = [VideoRecord(clips[n].path, i) for i, n in enumerate(GOOD_NAMES)] + [VideoRecord(broken["garbage"], 9)]
    ds = VideoClipDataset(records, RandomClipSampler(4), eval_transform(32))
    loader = DataLoader(ds, batch_size=5, num_workers=2, collate_fn=collate_clips)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadVideoWarning)  # raised inside the workers
        batch = next(iter(loader))
    assert batch["video"].shape == (5, 4, 3, 32, 32) and batch["label"].dtype == torch.int64
    assert batch["bad_files"] == [str(broken["garbage"])]
    assert 9 not in batch["label"].tolist()
    assert np.isin(batch["label"].numpy(), [0, 1, 2, 3]).all()


def test_short_video_warns_once_naming_the_file_and_repeats_the_last_frame(clips):
    from vidssm.data.datasets import ShortVideoWarning

    clip = clips["h264_bframes_mp4"]
    ref = torch.from_numpy(clip.frames[10:14]).permute(0, 3, 1, 2).float() / 255
    ds = VideoClipDataset([VideoRecord(clip.path, 0, 10, 14)], RandomClipSampler(3, stride=2))  # spans 5 > 4
    with pytest.warns(
        ShortVideoWarning, match=rf"{clip.path.name}: 4 frames in its range \[10, 14\), but a clip spans 5"
    ):
        video = ds[0]["video"]
    torch.testing.assert_close(video, ref[[0, 2, 3]], rtol=0, atol=0)  # frames 10, 12, then 13 again for 14
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds[0]  # once per file
        VideoClipDataset([VideoRecord(clip.path, 0, 10, 15)], RandomClipSampler(3, stride=2))[0]  # fits: silent
    two = VideoClipDataset(
        [VideoRecord(clip.path, 0, 10, 14), VideoRecord(clip.path, 1, 0, 3)], RandomClipSampler(3, 2)
    )
    with pytest.warns(ShortVideoWarning) as caught:
        two[0], two[1]
    assert [str(w.message).split(" but")[0].split("range ")[1] for w in caught] == ["[10, 14),", "[0, 3),"]
    whole = VideoClipDataset([VideoRecord(clip.path, 0)], UniformSampler(len(clip.frames) + 1))
    with pytest.warns(ShortVideoWarning, match=rf"{len(clip.frames)} frames, but a clip spans {len(clip.frames) + 1}"):
        whole[0]


def test_workers_warn_once_per_file_between_them(clips, broken, capfd):
    """Each DataLoader worker process used to give its own ShortVideoWarning / BadVideoWarning for the same file
    (spawned workers: fresh warning filters, printing to the inherited stderr)."""
    clip = clips["h264_bframes_mp4"]
    records = [VideoRecord(clip.path, 0, 10, 14)] * 8 + [VideoRecord(broken["garbage"], 1)] * 4  # spans 5 > 4
    ds = VideoClipDataset(records, RandomClipSampler(3, stride=2), eval_transform(32), check_files=False)
    loader = DataLoader(
        ds, batch_size=2, num_workers=2, collate_fn=collate_clips, multiprocessing_context="spawn", shuffle=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the workers' warnings go to their stderr, not to this process
        batches = list(loader)
    assert sum(len(b["bad_files"]) for b in batches) >= 4  # every garbage row was skipped and replaced
    err = capfd.readouterr().err
    assert err.count(f"{clip.path.name}: 4 frames in its range [10, 14)") == 1, err
    assert err.count("skipping unreadable video") == 1, err
    assert err.count("BadVideoWarning") == err.count("ShortVideoWarning") == 1, err


def test_a_range_past_the_end_of_the_video_warns_once_and_reads_to_the_end(clips):
    from vidssm.data.datasets import ShortVideoWarning

    clip = clips["h264_bframes_mp4"]
    n = len(clip.frames)
    ds = VideoClipDataset([VideoRecord(clip.path, 0, n - 4, 500)], RandomClipSampler(4))
    said = rf"\[{n - 4}, 500\) runs past the video's {n} frames; reading \[{n - 4}, {n}\)"
    with pytest.warns(ShortVideoWarning, match=said):
        video = ds[0]["video"]
    ref = torch.from_numpy(clip.frames[n - 4 :]).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(video, ref, rtol=0, atol=0)  # the last 4 frames: the range cut to the video
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds[0]  # once per file and range
        VideoClipDataset([VideoRecord(clip.path, 0, 0, n)], RandomClipSampler(4))[0]  # ends at the last frame: silent
