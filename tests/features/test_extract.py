"""`vidssm extract-features`: features against the model, corrupt files, interrupted-and-resumed runs, ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import vidssm
from tests.helpers import FIXTURES, rel_err
from vidssm.cli import main
from vidssm.data.writers import write_video
from vidssm.features import TorchFeatures, extract_features, list_videos, load_feature_backend, read_index
from vidssm.features.extract import feature_names
from vidssm.stream.preprocess import FramePreprocessor
from vidssm.stream.sources import VideoFileSource

LENGTHS = {"a.mp4": 7, "sub/b.mp4": 21, "c.avi": 12}


def _frames(num: int, seed: int) -> np.ndarray:
    """Smooth random RGB frames `[T, 48, 64, 3]` uint8."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (num, 7, 9, 3)).astype(np.float32)
    return base.repeat(8, axis=1).repeat(8, axis=2)[:, :48, :64].astype(np.uint8)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    for seed, (name, num) in enumerate(LENGTHS.items()):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / name, _frames(num, seed), fps=10)
    (root / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(3000))  # not a video
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A head-less save_pretrained folder whose one clip covers every test video (offline == streamed)."""
    torch.manual_seed(0)
    model = vidssm.create_model("trecvit_debug", depth=2, frames_per_clip=64)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith((".b", ".scale", "bias")):
                p.normal_(0, 0.3)
    return model.save_pretrained(tmp_path_factory.mktemp("ckpt") / "bb", include_head=False)


def _decoded(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """The whole video decoded and preprocessed as the extractor does, `[1, T, 3, H, W]`."""
    with VideoFileSource(path) as source:
        frames = np.stack(list(source))
    return FramePreprocessor(size).video(frames)[None]


def _npys(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.npy"))}


def test_streamed_features_equal_the_model_and_bad_files_are_listed(videos, folder, tmp_path):
    backend = load_feature_backend(checkpoint=folder, output="embedding", mode="stream")
    run = extract_features(backend, list_videos(videos), tmp_path / "out", chunk=5, progress=False)
    assert run["done"] == 3 and run["failed"] == 1 and run["frames"] == sum(LENGTHS.values())
    header, entries = read_index(tmp_path / "out" / "index.jsonl")
    assert header["model"]["output"] == "embedding" and len(header["model"]["config_hash"]) == 16
    assert "broken.mp4" in entries[str(videos / "broken.mp4")]["error"]
    model = vidssm.from_pretrained(folder)
    for name, num in LENGTHS.items():
        entry = entries[str(videos / name)]
        feats = np.load(tmp_path / "out" / entry["features"])
        assert feats.shape == (num, 48) and entry["shape"] == [num, 48] and entry["frames"] == num
        assert entry["fps"] == pytest.approx(10)
        with torch.no_grad():
            ref = model(_decoded(videos / name, (32, 32)), output="embedding")[0]
        assert rel_err(torch.from_numpy(feats), ref) <= 1e-5


def test_interrupted_and_resumed_run_is_byte_identical_to_a_clean_run(videos, folder, tmp_path, monkeypatch):
    backend = load_feature_backend(checkpoint=folder, output="tokens", mode="stream")
    clean = tmp_path / "clean"
    extract_features(backend, list_videos(videos), clean, chunk=4, progress=False)

    calls = []
    real = TorchFeatures.stream

    def interrupt_in_the_second_video(self, frames):
        calls.append(1)
        if len(calls) == 4:  # a.mp4 takes 2 chunks; stop after one chunk of c.avi (sorted: a, broken, c, sub/b)
            raise KeyboardInterrupt
        return real(self, frames)

    monkeypatch.setattr(TorchFeatures, "stream", interrupt_in_the_second_video)
    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        extract_features(backend, list_videos(videos), resumed, chunk=4, progress=False)
    assert list(_npys(resumed)) == ["a.npy"] and not list(resumed.rglob("*.part"))
    monkeypatch.setattr(TorchFeatures, "stream", real)
    run = extract_features(backend, list_videos(videos), resumed, chunk=4, progress=False)
    assert (run["done"], run["skipped"], run["failed"]) == (2, 1, 1)
    assert _npys(resumed) == _npys(clean) and len(_npys(clean)) == 3
    assert (resumed / "index.jsonl").read_text() == (clean / "index.jsonl").read_text()
    with pytest.raises(ValueError, match="holds features of .* use another --out"):
        extract_features(backend, list_videos(videos), resumed, chunk=8, progress=False)  # other settings


def test_clip_features_are_the_heads_pre_logits(videos, folder, tmp_path):
    backend = load_feature_backend(checkpoint=folder, output="embedding", mode="clip")
    extract_features(backend, [videos / "sub/b.mp4"], tmp_path, clip_len=8, batch_size=2, progress=False)
    feats = np.load(tmp_path / "b.npy")
    assert feats.shape == (3, 48)  # 21 frames: clips of 8, 8 and 5
    video = _decoded(videos / "sub/b.mp4", (32, 32))
    model = vidssm.from_pretrained(folder)
    with torch.no_grad():
        for i, clip in enumerate(video.split(8, dim=1)):
            ref = model.forward_head(model.forward_features(clip), pre_logits=True)[0, 0]
            assert rel_err(torch.from_numpy(feats[i]), ref) <= 1e-5


def test_onnx_and_npz_backends(videos, folder, tmp_path):
    from vidssm.export import export_model

    model = vidssm.from_pretrained(folder)
    step = export_model(model, tmp_path / "step.onnx", "onnx", "step", "embedding")
    out_onnx, out_torch = tmp_path / "onnx", tmp_path / "torch"
    clip = [videos / "c.avi"]
    extract_features(load_feature_backend(onnx=step, output="embedding"), clip, out_onnx, progress=False)
    extract_features(load_feature_backend(checkpoint=folder, output="embedding"), clip, out_torch, progress=False)
    onnx_feats, torch_feats = np.load(out_onnx / "c.npy"), np.load(out_torch / "c.npy")
    assert onnx_feats.shape == (12, 48) and rel_err(torch.from_numpy(onnx_feats), torch_feats) <= 1e-5
    with pytest.raises(ValueError, match="needs `vidssm export --what offline`"):
        load_feature_backend(onnx=step, output="embedding", mode="clip")
    with pytest.raises(ValueError, match="returns 'embedding', not 'tokens'"):
        load_feature_backend(onnx=step, output="tokens")

    npz = load_feature_backend(npz=FIXTURES / "trecvit_visible_ckpt.npz", output="embedding")
    extract_features(npz, clip, tmp_path / "npz", progress=False)
    feats = np.load(tmp_path / "npz" / "c.npy")
    with torch.no_grad():
        ref = npz.model(_decoded(videos / "c.avi", npz.frame_size), output="embedding")[0]
    assert feats.shape == tuple(ref.shape) and feats.shape[0] == 12 and rel_err(torch.from_numpy(feats), ref) <= 1e-5


def test_cli_refuses_logits_of_a_headless_folder_and_lists_failures(videos, folder, tmp_path, capsys):
    args = ["extract-features", "--checkpoint", str(folder), "--videos", str(videos), "--no-progress"]
    assert main([*args, "--output", "logits", "--out", str(tmp_path / "x")]) == 2
    assert "no output='logits'; use output='embedding' or 'tokens'" in capsys.readouterr().err
    listing = tmp_path / "list.txt"
    listing.write_text("a.mp4\n# a comment\nbroken.mp4\n")
    listed = [*args[:3], "--no-progress", "--videos", str(listing), "--root", str(videos)]
    assert main([*listed, "--out", str(tmp_path / "y")]) == 1
    captured = capsys.readouterr()
    assert "1 videos extracted" in captured.out and "failed: " in captured.err and "broken.mp4" in captured.err
    assert np.load(tmp_path / "y" / "a.npy").shape == (7, 48)


def test_feature_names_follow_the_listing_not_symlink_targets(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "videos" / "x").mkdir(parents=True)
    for name in ("a.mp4", "b.avi"):
        (tmp_path / "elsewhere" / name).write_bytes(b"")
        (tmp_path / "videos" / "x" / name).symlink_to(tmp_path / "elsewhere" / name)
    (tmp_path / "videos" / "c.mkv").write_bytes(b"")
    videos = list_videos(tmp_path / "videos")
    assert feature_names(videos) == ["c.npy", "x/a.npy", "x/b.npy"]
    (tmp_path / "videos" / "x" / "a.avi").write_bytes(b"")
    with pytest.raises(ValueError, match="would both be written to x/a.npy"):
        feature_names(list_videos(tmp_path / "videos"))
