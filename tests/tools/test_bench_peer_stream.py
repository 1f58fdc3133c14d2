"""`tools/bench_peer_stream.py`: the parts that need neither JAX nor the authors' code (arguments, statistics,
goal verdicts, the table and the JSON/markdown files). The JAX run itself is a tool, not a test."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_peer_stream", ROOT / "tools" / "bench_peer_stream.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A folder shaped like a google-deepmind/trecvit checkout (the two files the tool imports)."""
    (tmp_path / "trecvit").mkdir()
    for name in ("modules.py", "trecvit_model.py"):
        (tmp_path / "trecvit" / name).write_text("")
    return tmp_path


def test_missing_trecvit_src_says_where_to_get_it(bench, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.parse_args([])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--trecvit-src is required" in err and "git clone https://github.com/google-deepmind/trecvit" in err


def test_wrong_trecvit_src_is_named(bench, tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--trecvit-src", str(tmp_path)])
    err = capsys.readouterr().err
    assert str(tmp_path.resolve()) in err and "no trecvit/modules.py" in err


def test_valid_arguments(bench, checkout, capsys):
    args = bench.parse_args(["--trecvit-src", str(checkout), "--checkpoints", "500", "10", "10", "--threads", "2"])
    assert args.trecvit_src == checkout.resolve() and args.checkpoints == [10, 500] and args.threads == 2
    assert args.out == bench.OUT and args.size == 224
    quick = bench.parse_args(["--trecvit-src", str(checkout), "--quick"])
    assert quick.size == 64 and quick.out is None
    for bad in (["--size", "100"], ["--clip-frames", "20"], ["--threads", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(["--trecvit-src", str(checkout), *bad])
    assert "--size must be a multiple" in capsys.readouterr().err


def test_missing_peer_venv_without_install_fails_clearly(bench, tmp_path):
    with pytest.raises(RuntimeError, match="no working JAX environment"):
        bench.ensure_peer_venv(tmp_path / "nothing", install=False)


def test_robust_ms_and_summarise(bench):
    # faster half of [1, 2, 3, 100] s is [1, 2] → median 1.5 s = 1500 ms
    assert bench.robust_ms([3.0, 100.0, 1.0, 2.0]) == pytest.approx(1500.0)
    assert bench.robust_ms([0.004]) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        bench.robust_ms([])
    times = {"eager_step": {10: [[0.01, 0.01], [0.03, 0.03], [0.02, 0.9]]}}
    assert bench.summarise(times) == {"eager_step": {10: pytest.approx(20.0)}}


def _ms(jax: float, ort: float, compiled: float, compiled_vit: float) -> dict[str, dict[int, float]]:
    return {
        "jax_step": {10: jax},
        "eager_step": {10: 40.0},
        "ort_step": {10: ort},
        "compiled_step": {10: compiled},
        "compiled_vit": {10: compiled_vit},
    }


def test_verdicts(bench):
    # the goal is on the default streaming step (`vidssm stream --backend auto`: ONNX Runtime), not eager
    assert bench.DEFAULT_STEP == "ort_step"
    g = bench.verdicts(_ms(jax=22.0, ort=20.0, compiled=17.0, compiled_vit=10.0), flops_ratio=1.6, frame=10)
    assert g["vs_jax"]["speedup"] == pytest.approx(1.1) and g["vs_jax"]["met"]
    assert g["vs_jax_best"] == {"row": "compiled_step", "speedup": pytest.approx(22 / 17)}
    assert g["floor_compiled"]["time_ratio"] == pytest.approx(1.7)
    assert g["floor_compiled"]["met"]  # 1.7 <= 1.1 * 1.6 = 1.76
    assert "floor_ort" not in g
    g = bench.verdicts(_ms(jax=22.0, ort=21.0, compiled=18.0, compiled_vit=10.0), flops_ratio=1.6, frame=10)
    assert not g["vs_jax"]["met"] and not g["floor_compiled"]["met"]  # 22/21 < 1.1; 1.8 > 1.76


def _result(bench) -> dict:
    ms = {
        "jax_step": {10: 22.0, 500: 22.5},
        "eager_step": {10: 36.0, 500: 36.5},
        "ort_step": {10: 33.0, 500: 33.5},
        "compiled_step": {10: 29.0, 500: 29.0},
        "compiled_vit": {10: 16.0, 500: 16.0},
    }
    return dict(
        meta=dict(
            size=224,
            threads=2,
            checkpoints=[10, 500],
            rounds=6,
            block=20,
            cpu="test cpu",
            torch="2.x",
            command="python tools/bench_peer_stream.py --trecvit-src DIR",
            seconds=12.0,
            jax="0.x",
        ),
        checks=dict(
            clip_frames=8,
            jax_stream_vs_clip_logits=1e-6,
            jax_stream_vs_clip_tokens=2e-6,
            jax_stream_vs_clip_tokens_rel=1e-6,
            vidssm_vs_jax_logits=4e-6,
            logits_scale=2.0,
        ),
        flops=dict(step=2.1e9, vit=1.25e9, ratio=1.68),
        ms_per_frame={r: {str(f): v for f, v in per.items()} for r, per in ms.items()},
        goals={str(f): bench.verdicts(ms, 1.68, f) for f in (10, 500)},
        notes=["shared machine"],
    )


def test_write_outputs(bench, tmp_path):
    result = _result(bench)
    js, md = bench.write_outputs(result, tmp_path / "out")
    assert json.loads(js.read_text()) == json.loads(json.dumps(result))
    text = md.read_text()
    assert "| DeepMind TRecViT-Ti step (jax.jit) | JAX | 22.0 | 22.5 | 1.00× |" in text
    assert "| vidssm step, eager | PyTorch eager | 36.0 | 36.5 | 0.62× |" in text
    assert "| vidssm step, ONNX Runtime | ONNX Runtime | 33.0 | 33.5 | 0.67× |" in text
    # 22.5 / 33.5 = 0.67 < 1.1: the miss is stated, never hidden
    assert "vidssm's default streaming step (vidssm step, ONNX Runtime) time: 0.67 (goal ≥ 1.1): **NOT met**" in text
    # compiled at frame 500: 29 / 16 = 1.81 vs floor 1.68 → 1.08× the floor, met
    assert "torch.compile: step / ViT-Ti 1.81 vs FLOP floor 1.68, 1.08× the floor (goal ≤ 1.1× the floor): met" in text
    assert "- shared machine" in text and "compare ratios" in text.lower()


def test_format_table(bench):
    table = bench.format_table({"jax_step": {10: 22.04, 500: 22.5}, "eager_vit": {10: 15.0, 500: 15.1}})
    lines = table.splitlines()
    assert lines[0].split()[-4:] == ["frame", "10", "frame", "500"]
    assert lines[1].split()[-2:] == ["22.04", "22.50"] and lines[2].startswith("timm ViT-Ti, eager")
