"""`--backend auto`: ONNX Runtime (cached export), then torch.compile, then eager, each probed against eager."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch

import vidssm.export
from vidssm.export import flatten_state
from vidssm.stream.backends import OnnxBackend, TorchBackend, load_backend
from vidssm.stream.cli import serve_main, stream_main
from vidssm.stream.selection import artefact_key, select_backend, stream_cache_dir

from .conftest import random_frames, tiny_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny model, its checkpoint and a cache folder holding its exported step graph (one real export)."""
    torch.manual_seed(3)
    model = tiny_model(depth=1, num_classes=4)
    root = tmp_path_factory.mktemp("sel")
    ckpt = model.save_pretrained(root / "ckpt", labels=["a", "b", "c", "d"])
    backend = select_backend(model, cache=root / "cache")
    return model, ckpt, root / "cache", backend


@pytest.fixture
def counted_export(exported, monkeypatch):
    """Replaces the exporter with a copy of the real export (fast), counting calls."""
    cache = exported[2]
    good = cache / f"{artefact_key(exported[0])}.onnx"
    tmp = good.with_suffix(".good")
    shutil.copy(good, tmp)
    calls = []

    def fake(model, out, fmt="onnx", what="step", output="logits"):
        calls.append((fmt, what, output))
        shutil.copy(tmp, out)
        return out

    monkeypatch.setattr(vidssm.export, "export_model", fake)
    return calls


def test_auto_picks_onnxruntime_and_matches_eager(exported):
    model, _, cache, backend = exported
    assert isinstance(backend, OnnxBackend) and backend.kind == "onnxruntime"
    assert backend.describe().startswith(f"backend: onnxruntime (auto; exported to {cache}")
    eager = TorchBackend(model)
    state_e, state_o = eager.init_state(), backend.init_state()
    for image in random_frames(5, 32, 32, seed=4):
        frame = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        want, state_e = eager.step(frame, state_e)
        got, state_o = backend.step(frame, state_o)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    for a, b in zip(state_o, flatten_state(model, state_e), strict=True):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-4, atol=1e-5)


def test_second_load_reuses_the_cached_graph(exported, counted_export):
    model, ckpt, cache, _ = exported
    backend = load_backend(checkpoint=ckpt, cache=cache)
    assert counted_export == []  # no export: the cache hit
    assert backend.kind == "onnxruntime" and f"cached {cache}" in backend.why
    assert backend.labels == ["a", "b", "c", "d"] and backend.name == "TRecViT"
    other = tiny_model(depth=1, num_classes=4)  # other weights: another key, exported
    assert artefact_key(other) != artefact_key(model)
    select_backend(other, cache=cache)
    assert len(counted_export) == 1


def test_corrupt_cache_file_is_rebuilt_with_a_warning(exported, counted_export, caplog):
    model, _, cache, _ = exported
    path = cache / f"{artefact_key(model)}.onnx"
    path.write_bytes(b"not an onnx file")
    with caplog.at_level(logging.WARNING):
        backend = select_backend(model, cache=cache)
    assert backend.kind == "onnxruntime" and len(counted_export) == 1
    assert "unusable" in caplog.text and "exporting it again" in caplog.text
    assert path.read_bytes()[:4] != b"not "


def test_export_failure_falls_back_with_one_line_warnings(monkeypatch, caplog, tmp_path):
    def broken_export(*args, **kwargs):
        raise vidssm.export.ExportError("TRecViT step (logits) → onnx failed: op aten::foo unsupported")

    def broken_compile(fn, **kwargs):
        def run(*a, **k):
            raise RuntimeError("no C++ compiler")

        return run

    monkeypatch.setattr(vidssm.export, "export_model", broken_export)
    monkeypatch.setattr(torch, "compile", broken_compile)
    model = tiny_model(depth=1)
    with caplog.at_level(logging.WARNING):
        backend = select_backend(model, cache=tmp_path)
    assert backend.kind == "eager" and isinstance(backend, TorchBackend)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("\n" not in w for w in warnings)
    assert "onnxruntime not used" in warnings[0] and "aten::foo unsupported" in warnings[0]
    assert "compiled not used" in warnings[1] and "no C++ compiler" in warnings[1]
    assert backend.describe().startswith("backend: eager (auto; not onnxruntime: ONNX export failed")
    with pytest.raises(RuntimeError, match="aten::foo"):  # asked for explicitly: an error, not a fallback
        select_backend(model, backend="onnx", cache=tmp_path)


def test_export_failure_falls_back_to_compiled(monkeypatch, tmp_path):
    def broken_export(*args, **kwargs):
        raise vidssm.export.ExportError("nope")

    calls = []

    def fake_compile(fn, **kwargs):  # a "compiled" step that is the eager one (the probe must accept it)
        calls.append(fn)
        return fn

    monkeypatch.setattr(vidssm.export, "export_model", broken_export)
    monkeypatch.setattr(torch, "compile", fake_compile)
    backend = select_backend(tiny_model(depth=1), cache=tmp_path)
    assert backend.kind == "compiled" and len(calls) == 1
    assert "not onnxruntime: ONNX export failed" in backend.why


def test_probe_rejects_a_backend_that_differs_from_eager(monkeypatch, tmp_path):
    model = tiny_model(depth=1)

    def wrong_compile(fn, **kwargs):
        def run(frame, state):
            logits, new_state = fn(frame, state)
            return logits + 1e-2, new_state

        return run

    monkeypatch.setattr(torch, "compile", wrong_compile)
    backend = select_backend(model, backend="compiled", cache=tmp_path)
    assert backend.kind == "eager" and "differ from eager" in backend.why


def test_backend_eager_override(exported, counted_export):
    _, ckpt, cache, _ = exported
    backend = load_backend(checkpoint=ckpt, backend="eager", cache=cache)
    assert backend.kind == "eager" and backend.describe() == "backend: eager (--backend eager)"
    assert counted_export == []


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VIDSSM_CACHE", str(tmp_path / "c"))
    assert stream_cache_dir() == tmp_path / "c" / "stream"
    monkeypatch.delenv("VIDSSM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert stream_cache_dir() == tmp_path / "x" / "vidssm" / "stream"


def test_stream_first_line_says_which_backend(exported, counted_export, monkeypatch, tmp_path, capsys):
    from PIL import Image

    _, ckpt, cache, _ = exported
    monkeypatch.setenv("VIDSSM_CACHE", str(cache.parent))
    shutil.copytree(cache, cache.parent / "stream", dirs_exist_ok=True)
    for i, image in enumerate(random_frames(3, 32, 32, seed=9)):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    assert stream_main(["--checkpoint", str(ckpt), "--source", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"backend: onnxruntime (auto; cached {cache.parent / 'stream' / artefact_key(exported[0])}.onnx)"
    assert counted_export == []
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)  # --compile is --backend compiled
    assert stream_main(["--checkpoint", str(ckpt), "--source", str(tmp_path), "--compile"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("backend: compiled (--backend compiled; built in")


def test_serve_reports_its_backend(monkeypatch, capsys):
    calls = {}
    monkeypatch.setattr("vidssm.serve.server.serve", lambda app, host, port, log_level: calls.update(app=app))
    assert serve_main(["--model", "trecvit_debug", "--backend", "eager"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "backend: eager (--backend eager)"
    from fastapi.testclient import TestClient

    with TestClient(calls["app"], base_url="http://127.0.0.1:8000") as client:
        info = client.get("/api/info").json()
    assert info["backend"] == {"kind": "eager", "why": "--backend eager", "line": "backend: eager (--backend eager)"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "m", "--compile", "--backend", "eager"], "--compile means --backend compiled"),
        (["--model", "m", "--compile", "--backend", "onnx"], "conflicts with --backend onnx"),
        (["--onnx", "x.onnx", "--backend", "eager"], "--backend eager runs a PyTorch model"),
        (["--onnx", "x.onnx", "--backend", "compiled"], "--backend compiled runs a PyTorch model"),
        (["--onnx", "x.onnx", "--compile"], "--compile applies to --checkpoint / --model"),
        (["--model", "m", "--backend", "fast"], "invalid choice: 'fast'"),
    ],
)
@pytest.mark.parametrize("main", [stream_main, serve_main])
def test_conflicting_flags_are_a_clear_usage_error(main, argv, message, capsys):
    extra = ["--source", "0"] if main is stream_main else []
    with pytest.raises(SystemExit) as info:
        main([*argv, *extra])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_load_backend_argument_conflicts(tmp_path):
    with pytest.raises(ValueError, match="conflicts with backend='eager'"):
        load_backend(model="trecvit_debug", compile=True, backend="eager")
    with pytest.raises(ValueError, match="backend must be one of"):
        load_backend(model="trecvit_debug", backend="tensorrt")


@pytest.mark.parametrize("from_env", [True, False])
def test_unwritable_cache_exports_into_a_temporary_folder_with_a_warning(
    exported, counted_export, monkeypatch, tmp_path, caplog, from_env
):
    """A cache path that cannot be a folder (here a file) used to end in "ONNX export failed"; now the graph is
    exported into a per-user temporary folder and the warning names the cache and how to choose another."""
    import tempfile

    model = exported[0]
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    if from_env:
        monkeypatch.setenv("VIDSSM_CACHE", str(blocked))
    with caplog.at_level(logging.WARNING):
        backend = select_backend(model, backend="onnx", cache=None if from_env else blocked / "stream")
    assert backend.kind == "onnxruntime" and len(counted_export) == 1
    assert f"stream cache {blocked}/stream cannot be written" in caplog.text
    assert ("VIDSSM_CACHE" in caplog.text) == from_env
    written = list((tmp_path / "tmp").glob("vidssm-stream-*/*.onnx"))
    assert [p.name for p in written] == [f"{artefact_key(model)}.onnx"] and blocked.read_text() == "not a folder"
    again = select_backend(model, backend="onnx", cache=None if from_env else blocked / "stream")
    assert len(counted_export) == 1 and f"cached {written[0]}" in again.why  # the fallback's file is reused


def test_model_by_name_gets_the_same_weights_every_run_and_hits_the_cache(tmp_path, monkeypatch):
    """`--model NAME` (random weights): drawn from seed 0, so a second run reuses the exported graph (each run used
    to draw new weights, export again and add a file to the cache), and the caller's random state is untouched."""
    kw = dict(img_size=32, patch_size=16, width=32, depth=1, num_heads=2, mlp_dim=64, rep_size=32, num_classes=3)
    from vidssm.stream.backends import _demo_model

    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = _demo_model("trecvit_debug", **kw), _demo_model("trecvit_debug", **kw)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    first = load_backend(model="trecvit_debug", backend="onnx", cache=tmp_path, **kw)
    second = load_backend(model="trecvit_debug", backend="onnx", cache=tmp_path, **kw)
    assert "exported to" in first.why and "cached" in second.why
    assert len(list(tmp_path.glob("*.onnx"))) == 1
