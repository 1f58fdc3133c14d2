"""Graph export: ONNX Runtime and torch.export programs against the PyTorch model."""

import onnx
import pytest
import torch

import vidssm
from tests.helpers import rel_err
from vidssm.export import ExportError, export_model, state_names
from vidssm.export.onnx_runtime import OnnxStreamingModel


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(1)
    model = vidssm.create_model(name, frames_per_clip=16).eval()
    with torch.no_grad():  # random biases/scales so that every state path matters
        for n, p in model.named_parameters():
            if n.endswith((".b", ".scale", "bias")):
                p.normal_(0, 0.3)
    return model


@pytest.mark.parametrize("name", ["trecvit_debug_hybrid", "trecvit_debug_lru", "trecvit_debug_rgbdiff"])
def test_onnx_step_matches_pytorch_over_100_frames(tmp_path, name):
    model = _model(name)
    path = export_model(model, tmp_path / "step.onnx", "onnx", "step")
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["frame", *state_names(model, "in")]
    assert [o.name for o in graph.output] == ["logits", *state_names(model, "out")]
    assert all(i.type.tensor_type.elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64) for i in graph.input)

    runner = OnnxStreamingModel(path)
    batch = 3  # traced with batch 2
    ort_state, state = runner.init_state(batch), model.init_state(batch)
    video = torch.rand(batch, 100, 3, 32, 32)
    worst = 0.0
    with torch.no_grad():
        for t in range(100):
            if t == 60:  # restart stream 1 on both sides
                mask = torch.tensor([False, True, False])
                state, ort_state = model.reset_state(state, mask), runner.reset_state(ort_state, mask.numpy())
            logits, state = model.step(video[:, t], state)
            ort_logits, ort_state = runner.step(video[:, t].numpy(), ort_state)
            worst = max(worst, rel_err(ort_logits, logits))
    assert worst <= 1e-5


@pytest.mark.parametrize("name", ["trecvit_debug_hybrid", "late_lru_debug"])
def test_onnx_offline_has_dynamic_batch_and_time(tmp_path, name):
    import onnxruntime as ort

    model = _model(name)
    path = export_model(model, tmp_path / "offline.onnx", "onnx", "offline")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "Scan" in ops  # the recurrence is a loop over time, not unrolled at the traced length
    session = ort.InferenceSession(str(path))
    for batch, frames in [(1, 3), (3, 11)]:  # traced with (2, 4)
        video = torch.rand(batch, frames, 3, 32, 32)
        (out,) = session.run(None, {"video": video.numpy()})
        with torch.no_grad():
            assert rel_err(out, model(video)) <= 1e-5


@pytest.mark.parametrize("what", ["step", "offline"])
def test_torch_export_program_matches(tmp_path, what):
    model = _model("trecvit_debug_lru")
    path = export_model(model, tmp_path / f"{what}.pt2", "torch-export", what)
    program = torch.export.load(path).module()
    video = torch.rand(3, 5, 3, 32, 32)
    with torch.no_grad():
        if what == "offline":
            torch.testing.assert_close(program(video), model(video), rtol=1e-5, atol=1e-6)
        else:
            from vidssm.export import flatten_state

            state = model.init_state(3)
            flat = flatten_state(model, state)
            for t in range(5):
                logits, *flat = program(video[:, t], *flat)
                ref, state = model.step(video[:, t], state)
                torch.testing.assert_close(logits, ref, rtol=1e-5, atol=1e-6)


def test_export_errors_are_clear(tmp_path):
    model = vidssm.create_model("trecvit_debug")
    with pytest.raises(ValueError, match="fmt must be one of"):
        export_model(model, tmp_path / "x", "tflite", "step")
    with pytest.raises(ValueError, match="what must be one of"):
        export_model(model, tmp_path / "x", "onnx", "everything")
    with pytest.raises(TypeError, match="Linear is not a vidssm"):
        export_model(torch.nn.Linear(2, 2), tmp_path / "x", "onnx", "step")


def test_export_failure_names_model_and_target(tmp_path, monkeypatch):
    model = vidssm.create_model("trecvit_debug")

    def broken(*args, **kwargs):
        raise RuntimeError("aten.weird_op has no ONNX translation")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(ExportError, match=r"TRecViT step \(logits\) → onnx failed: RuntimeError: aten.weird_op"):
        export_model(model, tmp_path / "x.onnx", "onnx", "step")


@pytest.mark.parametrize("output", ["embedding", "tokens", "logits"])
def test_onnx_step_output_kinds_match_pytorch_over_100_frames(tmp_path, output):
    model = _model("trecvit_debug_hybrid")
    path = export_model(model, tmp_path / f"step_{output}.onnx", "onnx", "step", output)
    assert [o.name for o in onnx.load(str(path)).graph.output] == [output, *state_names(model, "out")]
    runner = OnnxStreamingModel(path)
    assert runner.output == output
    if output != "logits":  # `vidssm stream` classifies: it refuses a graph that returns features
        from vidssm.stream.backends import OnnxBackend

        with pytest.raises(ValueError, match=f"returns '{output}', not class logits"):
            OnnxBackend(path)
    batch = 3
    ort_state, state = runner.init_state(batch), model.init_state(batch)
    video = torch.rand(batch, 100, 3, 32, 32)
    worst = 0.0
    with torch.no_grad():
        for t in range(100):
            if t == 60:
                mask = torch.tensor([False, True, False])
                state, ort_state = model.reset_state(state, mask), runner.reset_state(ort_state, mask.numpy())
            out, state = model.step(video[:, t], state, output=output)
            ort_out, ort_state = runner.step(video[:, t].numpy(), ort_state)
            assert ort_out.shape == tuple(out.shape)
            worst = max(worst, rel_err(ort_out, out))
    assert worst <= 1e-5, worst


@pytest.mark.parametrize("output", ["embedding", "tokens"])
def test_offline_output_kinds_onnx_and_torch_export(tmp_path, output):
    import onnxruntime as ort

    model = _model("late_hybrid_debug_tokens")
    onnx_path = export_model(model, tmp_path / "offline.onnx", "onnx", "offline", output)
    program = torch.export.load(export_model(model, tmp_path / "offline.pt2", "torch-export", "offline", output))
    session = ort.InferenceSession(str(onnx_path))
    assert [o.name for o in session.get_outputs()] == [output]
    for batch, frames in [(1, 3), (3, 11)]:
        video = torch.rand(batch, frames, 3, 32, 32)
        with torch.no_grad():
            ref = model(video, output=output)
            (out,) = session.run(None, {"video": video.numpy()})
            assert out.shape == tuple(ref.shape) and rel_err(out, ref) <= 1e-5
            torch.testing.assert_close(program.module()(video), ref, rtol=1e-5, atol=1e-6)


def test_torch_export_step_embedding(tmp_path):
    from vidssm.export import flatten_state

    model = _model("trecvit_debug_lru")
    program = torch.export.load(export_model(model, tmp_path / "s.pt2", "torch-export", "step", "embedding")).module()
    video = torch.rand(2, 5, 3, 32, 32)
    state = model.init_state(2)
    flat = flatten_state(model, state)
    with torch.no_grad():
        for t in range(5):
            out, *flat = program(video[:, t], *flat)
            ref, state = model.step(video[:, t], state, output="embedding")
            torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_headless_folder_exports_embedding_and_refuses_logits(tmp_path, capsys):
    from vidssm.cli import main

    model = _model("trecvit_debug")
    model.save_pretrained(tmp_path / "bb", include_head=False)
    headless = vidssm.from_pretrained(tmp_path / "bb")
    video = torch.rand(2, 4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(headless(video, output="embedding"), model(video, output="embedding"))
    with pytest.raises(ValueError, match=r"without trained head.cls_head .*use output='embedding' or 'tokens'"):
        export_model(headless, tmp_path / "x.onnx", "onnx", "step", "logits")
    with pytest.raises(ValueError, match="no output='logits'"):
        headless.step(video[:, 0], headless.init_state(2))
    with pytest.raises(SystemExit):
        main(["export", "--checkpoint", str(tmp_path / "bb"), "--output", "logits", "--out", str(tmp_path / "y.onnx")])
    assert "--output logits: TRecViT was loaded without trained head.cls_head" in capsys.readouterr().err
    out = tmp_path / "emb.pt2"
    args = ["--checkpoint", str(tmp_path / "bb"), "--format", "torch-export", "--output", "embedding"]
    assert main(["export", *args, "--out", str(out)]) == 0
    assert out.is_file()
