"""`tools/ablations.py --quick` for every suite: the JSON structure, the markdown columns and the plots (a smoke
run of the tool on tiny settings, not a test of accuracy; the full suites are tools, not tests)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vidssm.layers import TemporalConfig

ROOT = Path(__file__).resolve().parents[2]
SETTING = {"lru-ladder": "seqmnist16", "block": "mmnist_temporal", "memory": "8"}  # the --quick settings


@pytest.fixture(scope="module")
def ablations():
    spec = importlib.util.spec_from_file_location("ablations", ROOT / "tools" / "ablations.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results(ablations, tmp_path_factory) -> Path:
    out, data = tmp_path_factory.mktemp("results"), tmp_path_factory.mktemp("data")
    (out / "ablations.md").write_text(f"# old\n\n{ablations.FINDINGS_MARK}\nkept findings\n")
    for suite in ablations.SUITES:
        argv = ["--suite", suite, "--quick", "--seeds", "2", "--out", str(out), "--data", str(data)]
        assert ablations.main(argv) == 0
    return out


def test_json_structure(ablations, results):
    data = json.loads((results / "ablations.json").read_text())
    assert set(data) == set(ablations.SUITES)
    for suite, variants in data.items():
        assert list(variants) == list(ablations.VARIANTS[suite])
        for by_setting in variants.values():
            assert list(by_setting) == [SETTING[suite]]
            for r in by_setting.values():
                assert set(r) == {"mean", "std", "seeds"} and r["seeds"] == 2
                assert 0.0 <= r["mean"] <= 1.0 and r["std"] >= 0.0
    runs = json.loads((results / "ablations_runs.json").read_text())
    for suite in ablations.SUITES:
        one = next(iter(runs[suite][next(iter(ablations.VARIANTS[suite]))].values()))
        assert len(one) == 2 and {"top1", "steps", "cpu_s", "wall_s"} <= set(one[0]) and one[0]["steps"] == 2


def test_markdown_and_plots(ablations, results):
    md = (results / "ablations.md").read_text()
    for suite in ablations.SUITES:
        assert f"## {suite}" in md and (results / f"ablations_{suite}.png").stat().st_size > 1000
        for variant in ablations.VARIANTS[suite]:
            assert f"| {variant} |" in md
    assert "| variant | 8 | steps | CPU s/run |" in md
    assert md.rstrip().endswith("kept findings"), "text after the findings mark survives a rerun"


def test_rerun_merges_settings(ablations, results, tmp_path):
    before = json.loads((results / "ablations.json").read_text())
    args = ["--suite", "memory", "--quick", "--seeds", "1", "--frames", "6", "--variants", "LRU", "--out", str(results)]
    assert ablations.main([*args, "--data", str(tmp_path)]) == 0
    after = json.loads((results / "ablations.json").read_text())
    assert after["memory"]["LRU"]["8"] == before["memory"]["LRU"]["8"] and after["memory"]["LRU"]["6"]["seeds"] == 1
    assert after["block"] == before["block"]


def test_bad_arguments_exit(ablations):
    with pytest.raises(SystemExit):
        ablations.main(["--suite", "memory", "--variants", "nope"])
    with pytest.raises(SystemExit):
        ablations.main(["--suite", "nope"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--suite", "lru-ladder", "--seq-length", "10"], "--seq-length must be a square"),
        (["--suite", "lru-ladder", "--seq-length", "-4"], "--seq-length must be a square"),
        (["--suite", "block", "--first-seed", "-1"], "--first-seed must be >= 0"),
        (["--suite", "block", "--real", "order", "--width", "7", "--train", "3"], "--width, --train: not used"),
    ],
)
def test_bad_values_name_the_flag_before_anything_is_written(ablations, tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        ablations.main([*argv, "--quick", "--out", str(out), "--data", str(tmp_path / "data")])
    assert message in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "data").exists()


def test_a_real_data_folder_that_is_not_a_build_is_refused_naming_the_flag(ablations, tmp_path, capsys):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("a user's folder")
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        ablations.main(["--suite", "block", "--quick", "--real", "order", "--real-data", str(other), "--out", str(out)])
    assert f"--real-data {other}: not a `vidssm data real-motion` build" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"] and not out.exists()  # nothing written


def test_quick_run_needs_an_out_folder(ablations, capsys):
    """A smoke run must never merge its numbers into the committed docs/results."""
    with pytest.raises(SystemExit):
        ablations.main(["--suite", "block", "--quick"])
    assert "--quick needs --out" in capsys.readouterr().err


def test_ring_sets_the_recurrent_kinds_only(ablations):
    ring = (0.9, 0.9999)
    fields = {name: ablations.temporal_config(v, 32, ring) for name, v in ablations.VARIANTS["memory"].items()}
    assert fields["RG-LRU"] == {"kind": "rglru", "min_rad": 0.9, "max_rad": 0.9999}
    assert fields["LRU"] == {"kind": "lru", "r_min": 0.9, "r_max": 0.9999}
    assert (
        fields["hybrid (RG-LRU, attention)"]["min_rad"] == 0.9 and "r_min" not in fields["hybrid (RG-LRU, attention)"]
    )
    assert fields["attention w8"] == {"kind": "attention", "window": 8} and fields["frame averaging"] == {
        "kind": "none"
    }
    assert ablations.temporal_config({"kind": "rglru", "min_rad": 0.6}, 32, ring)["min_rad"] == 0.6  # the variant's
    assert ablations.temporal_config({"kind": "rglru"}, 32, None) == {"kind": "rglru"}
    # the built model starts on the ring: RG-LRU's a = exp(-softplus(Λ)) within [0.9, 0.9999]
    s = ablations.Settings(width=8, depth=2, num_heads=2, ring=ring)
    model = ablations.video_model({"kind": "rglru"}, s, 8, 10)
    a = [torch.exp(-torch.nn.functional.softplus(p)) for n, p in model.named_parameters() if n.endswith("a_param")]
    assert len(a) == 2 and all(x.min() >= 0.9 - 1e-6 and x.max() <= 0.9999 + 1e-6 for x in a)
    assert min(x.min() for x in a) < 0.95  # spread over the ring, not the default ring [0.5, 0.999]


def test_every_frame_loss_is_the_mean_over_frames_from_the_cue_on(ablations, tmp_path):
    s = ablations.Settings(width=8, depth=2, num_heads=2, num_train=4, num_test=2, still_cue=True, digit_size=16)
    plain = ablations.memory_task(s, tmp_path, 8)
    dense = ablations.memory_task(ablations.Settings(**{**s.__dict__, "every_frame_loss": True}), tmp_path, 8)
    assert plain.loss is None and torch.equal(plain.train_x, dense.train_x)
    torch.manual_seed(0)
    model = dense.build({"kind": "rglru"})
    x, y = dense.train_x, dense.train_y
    video = x.float().div(255)[:, :, None].expand(-1, -1, 3, -1, -1)
    with torch.no_grad():
        logits = model.head.cls_head(model(video, output="embedding"))  # [B, T, K]
        expected = torch.stack([torch.nn.functional.cross_entropy(logits[:, t], y) for t in range(3, 8)]).mean()
        got = dense.loss(model, x, y)
        last = ablations.last_frame_logits(model, video)
        assert torch.allclose(ablations.frame_logits(model, video)[:, -1], last)
        assert not torch.allclose(torch.nn.functional.cross_entropy(last, y), expected)  # not the last frame alone
    assert torch.allclose(got, expected, atol=1e-6)


def test_quick_memory_run_trains_as_the_suite_does(ablations, results):
    """`--quick` shrinks the sizes but keeps how the memory suite trains (`every_frame_loss`, `ring`), so the smoke
    run goes through the suite's dense loss and ring init (it used to fall back to the last-frame loss and the
    default init); the block suite's quick run stays on Moving-MNIST."""
    memory = ablations.suite_settings("memory", quick=True)
    assert memory.every_frame_loss is True and memory.ring == ablations.SUITE_DEFAULTS["memory"]["ring"]
    assert memory.max_steps == ablations.Settings.quick().max_steps and memory.batch_size == 4
    block = ablations.suite_settings("block", quick=True)
    assert block == ablations.Settings.quick() and block.block_memory_frames == 0
    assert ablations.suite_settings("memory", quick=False) == ablations.Settings(**ablations.SUITE_DEFAULTS["memory"])
    text = (results / "ablations.md").read_text().split("## memory")[1]
    assert '"every_frame_loss": true' in text and '"ring": [0.9, 0.9999]' in text


def test_test_frames_carry_the_state_past_the_training_length(ablations, tmp_path):
    """`--test-frames`: a model trained at T is scored on longer clips with its weights and no state reset at T."""
    s = ablations.Settings(width=8, depth=2, num_heads=2, num_train=4, num_test=3, still_cue=True, digit_size=16)
    short, longer = ablations.memory_task(s, tmp_path, 6), ablations.memory_task(s, tmp_path, 12, train=False)
    assert len(longer.train_y) == 0 and longer.test_x.shape[:2] == (3, 12)
    torch.manual_seed(0)
    variant = {"kind": "rglru"}
    model = short.build(variant).eval()
    long_model = ablations.at_length(model, longer, variant).eval()
    video = longer.test_x.float().div(255)[:, :, None].expand(-1, -1, 3, -1, -1)
    with torch.no_grad():
        carried, reset = ablations.frame_logits(long_model, video), ablations.frame_logits(model, video)
    torch.testing.assert_close(carried[:, :6], reset[:, :6])  # the same weights
    assert not torch.allclose(carried[:, 6:], reset[:, 6:])  # the short model resets its state at frame 6
    with torch.no_grad():
        again = ablations.frame_logits(model, video[:, 6:])
    torch.testing.assert_close(reset[:, 6:], again)  # ... i.e. it reads frames 6-11 as a new clip
    assert ablations.score(longer, long_model) == pytest.approx(
        (carried[:, -1].argmax(-1) == longer.test_y).float().mean().item()
    )


def test_test_frames_run_writes_the_longer_settings(ablations, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SystemExit):  # 4 is no longer than the training length: refused, not silently dropped
        ablations.main(["--suite", "memory", "--quick", "--frames", "6", "--test-frames", "4", "12", "--out", str(out)])
    argv = ["--suite", "memory", "--quick", "--seeds", "1", "--frames", "6", "--test-frames", "12",
            "--variants", "RG-LRU", "attention w8", "--out", str(out), "--data", str(tmp_path / "data")]  # fmt: skip
    assert ablations.main(argv) == 0
    data = json.loads((out / "ablations.json").read_text())["memory"]
    assert {v: sorted(d) for v, d in data.items()} == {"RG-LRU": ["6", "6→12"], "attention w8": ["6", "6→12"]}
    assert "| variant | 6 | 6→12 | steps | CPU s/run |" in (out / "ablations.md").read_text()
    with pytest.raises(SystemExit):
        ablations.main(["--suite", "block", "--quick", "--test-frames", "32", "--out", str(out)])


def _lru_quick_args(tmp_path: Path) -> tuple[Path, list[str]]:
    """The results folder and the arguments of a quick LRU memory run at 6 frames."""
    out, data = tmp_path / "out", tmp_path / "data"
    return out, ["--suite", "memory", "--quick", "--frames", "6", "--variants", "LRU", "--out", str(out),
                 "--data", str(data)]  # fmt: skip


def test_first_seed_adds_seeds_to_an_earlier_run(ablations, tmp_path):
    out, args = _lru_quick_args(tmp_path)
    assert ablations.main([*args, "--seeds", "1"]) == 0
    assert ablations.main([*args, "--seeds", "2", "--first-seed", "1"]) == 0
    runs = json.loads((out / "ablations_runs.json").read_text())["memory"]["LRU"]["6"]
    assert [r["seed"] for r in runs] == [0, 1, 2]
    summary = json.loads((out / "ablations.json").read_text())["memory"]["LRU"]["6"]
    assert summary["seeds"] == 3 and summary["mean"] == pytest.approx(sum(r["top1"] for r in runs) / 3, abs=1e-4)
    assert ablations.main([*args, "--seeds", "1"]) == 0  # first seed 0: a new run replaces the stored ones
    assert json.loads((out / "ablations.json").read_text())["memory"]["LRU"]["6"]["seeds"] == 1
    with pytest.raises(SystemExit):
        ablations.main([*args, "--first-seed", "-1"])


def _recording_task(ablations, frames: int) -> tuple:
    """A tiny sequence task whose logits record the clip length of every training call."""
    torch.manual_seed(0)
    x, y = torch.randn(8, frames, 3), torch.randint(2, (8,))
    lengths: list[int] = []

    def logits(model, batch):
        lengths.append(batch.shape[1])
        return model(batch.mean(1))

    task = ablations.Task(x, y, x[:2], y[:2], lambda v: torch.nn.Linear(3, 2), logits)
    return task, lengths


def test_warmup_trains_on_the_first_frames_then_on_whole_clips(ablations):
    s = ablations.Settings(batch_size=2, max_steps=100_000, cpu_seconds=0.6, warmup_frames=2, warmup_share=0.5)
    task, lengths = _recording_task(ablations, 5)
    run = ablations.train_and_test(task, {}, s, 0)
    train = lengths[: run["steps"]]  # then the scoring calls
    assert set(train) == {2, 5} and train == sorted(train), "short clips first, then whole clips, never back"
    assert run["warmup_steps"] == train.count(2)
    task, lengths = _recording_task(ablations, 5)
    s = ablations.Settings(batch_size=2, max_steps=6)
    run = ablations.train_and_test(task, {}, s, 0)
    assert lengths[:6] == [5] * 6 and "warmup_steps" not in run


def test_warmup_and_size_flags_are_checked_and_recorded(ablations, tmp_path):
    with pytest.raises(ValueError, match="warmup_share"):
        ablations.Settings(warmup_frames=4, warmup_share=1.0)
    out, data = tmp_path / "out", tmp_path / "data"
    args = ["--suite", "memory", "--quick", "--frames", "6", "--variants", "RG-LRU", "--out", str(out),
            "--data", str(data), "--seeds", "1"]  # fmt: skip
    for bad in (["--warmup", "4", "x"], ["--warmup", "4", "1.5"], ["--width", "0"], ["--test", "0"]):
        with pytest.raises(SystemExit):
            ablations.main([*args, *bad])
    assert ablations.main([*args, "--warmup", "4", "0.5", "--width", "16", "--test", "3", "--stem", "patch"]) == 0
    info = json.loads((out / "ablations_runs.json").read_text())["memory"]["_settings"]
    assert (info["warmup_frames"], info["warmup_share"], info["width"], info["num_test"], info["stem"]) == (
        4, 0.5, 16, 3, "patch"
    )  # fmt: skip
    assert "warmup_steps" in json.loads((out / "ablations_runs.json").read_text())["memory"]["RG-LRU"]["6"][0]


def test_memory_suite_tokenizes_with_a_conv_stem(ablations):
    """The memory suite's models name the cue through a conv stem (the patch model's cue-only ceiling is 93%)."""
    from vidssm.layers.patch_embed import ConvPatchEmbed

    for quick in (False, True):
        s = ablations.suite_settings("memory", quick=quick)
        assert s.stem == "conv"
        model = ablations.video_model({"kind": "rglru"}, s, 8, 10)
        assert isinstance(model.tokenizer.patch_embed, ConvPatchEmbed)
    patch = ablations.video_model({"kind": "rglru"}, ablations.Settings(width=8), 8, 10)
    assert not isinstance(patch.tokenizer.patch_embed, ConvPatchEmbed)


def test_a_warmup_shorter_than_the_cue_still_trains_every_frame_loss(ablations, tmp_path):
    """`--warmup 2 0.5` on the memory suite (cue frames 0-3): the every-frame loss sliced from the cue's last frame
    (index 3) of a 2-frame clip was empty, so the loss was NaN and every warm-up step had zero gradients."""
    s = dataclasses.replace(ablations.suite_settings("memory", quick=True), warmup_frames=2)
    task = ablations.memory_task(s, tmp_path, 6)
    torch.manual_seed(0)
    model = task.build({"kind": "rglru"})
    x, y = task.train_x[:4], task.train_y[:4]
    loss = task.loss(model, x[:, :2], y)
    loss.backward()
    assert torch.isfinite(loss)
    assert sum(float(p.grad.norm()) for p in model.parameters() if p.grad is not None) > 0
    reference = torch.nn.functional.cross_entropy(
        ablations.frame_logits(model, ablations._as_video(x[:, :2]))[:, -1], y
    )
    assert torch.allclose(loss, reference)  # the shorter clip's last frame
    full = task.loss(model, x, y)  # whole clips: frames 3.. as before
    logits = ablations.frame_logits(model, ablations._as_video(x))[:, 3:]
    assert torch.allclose(full, torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.repeat_interleave(3)))


def test_warmup_longer_than_the_clip_counts_no_warmup_steps(ablations):
    """`--warmup 100 0.5` on 5-frame clips cuts nothing: it reported every step as a warm-up step."""
    s = ablations.Settings(batch_size=2, max_steps=6, cpu_seconds=60.0, warmup_frames=5, warmup_share=0.9)
    task, lengths = _recording_task(ablations, 5)
    run = ablations.train_and_test(task, {}, s, 0)
    assert lengths[:6] == [5] * 6 and run["warmup_steps"] == 0
    s = ablations.Settings(batch_size=2, max_steps=6, cpu_seconds=60.0, warmup_frames=4, warmup_share=0.9)
    task, lengths = _recording_task(ablations, 5)
    assert ablations.train_and_test(task, {}, s, 0)["warmup_steps"] == 6 and lengths[:6] == [4] * 6


def test_warmup_is_refused_on_the_lru_ladder(ablations, tmp_path, capsys):
    args = ["--suite", "lru-ladder", "--quick", "--out", str(tmp_path / "o"), "--data", str(tmp_path / "d")]
    with pytest.raises(SystemExit):
        ablations.main([*args, "--warmup", "4", "0.5"])
    assert "--warmup is for the video suites" in capsys.readouterr().err and not (tmp_path / "o").exists()
    with pytest.raises(SystemExit):  # was accepted, ignored and recorded in `_settings` as if it had been used
        ablations.main([*args, "--stem", "conv"])
    assert "--stem is for the video suites" in capsys.readouterr().err and not (tmp_path / "o").exists()


@pytest.mark.parametrize(("width", "stem", "message"), [("2", "conv", "too small for a 3-layer conv stem"),
    ("5", "patch", "divisible by num_heads"), ("4", "patch", "RoPE needs >= 3")])  # fmt: skip
def test_sizes_the_models_cannot_take_fail_before_any_data_is_built(ablations, tmp_path, capsys, width, stem, message):
    """`--width 4` crashed in the attention's forward and `--width 2 --stem conv` in the model's constructor, both
    after the data set was built (12,000 clips with the memory suite's defaults), with a traceback."""
    data = tmp_path / "data"
    args = ["--suite", "memory", "--quick", "--frames", "6", "--out", str(tmp_path / "o"), "--data", str(data)]
    with pytest.raises(SystemExit):
        ablations.main([*args, "--width", width, "--stem", stem])
    err = capsys.readouterr().err
    assert "cannot be built with these settings" in err and message in err and not data.exists()


def test_warmup_is_a_share_of_the_step_cap_too(ablations):
    """With `--max-steps` ending the run before the CPU budget, a CPU-time warm-up share took every step: the model
    never saw a whole clip (e.g. `--max-steps 600 --minutes 4 --warmup 4 0.3` on the block suite)."""
    s = ablations.Settings(batch_size=2, max_steps=10, cpu_seconds=600.0, warmup_frames=2, warmup_share=0.3)
    task, lengths = _recording_task(ablations, 5)
    run = ablations.train_and_test(task, {}, s, 0)
    assert lengths[:10] == [2] * 3 + [5] * 7 and run["warmup_steps"] == 3


def test_first_seed_refuses_to_mix_settings_into_the_stored_runs(ablations, tmp_path, capsys):
    """The docstring's example added an 8-minute run without warm-up as "a second seed" of a 12-minute run with
    warm-up: the mean mixed the two protocols and `_settings` named only the second."""
    out, args = _lru_quick_args(tmp_path)
    assert ablations.main([*args, "--seeds", "1", "--warmup", "2", "0.5"]) == 0
    for other, field in ((["--warmup", "2", "0.25"], "warmup_share: 0.5 → 0.25"), ([], "warmup_frames: 2 → 0"),
                         (["--warmup", "2", "0.5", "--minutes", "0.2"], "cpu_seconds: 30.0 → 12.0")):  # fmt: skip
        with pytest.raises(SystemExit):
            ablations.main([*args, *other, "--seeds", "1", "--first-seed", "1"])
        assert field in capsys.readouterr().err
    assert [r["seed"] for r in json.loads((out / "ablations_runs.json").read_text())["memory"]["LRU"]["6"]] == [0]
    assert ablations.main([*args, "--warmup", "2", "0.5", "--seeds", "1", "--first-seed", "1", "--threads", "2"]) == 0
    assert [r["seed"] for r in json.loads((out / "ablations_runs.json").read_text())["memory"]["LRU"]["6"]] == [0, 1]
    stored = json.loads((out / "ablations_runs.json").read_text())
    del stored["memory"]["_settings"]["stem"]  # a file from before the field: counts at the default ("patch")
    (out / "ablations_runs.json").write_text(json.dumps(stored))
    assert ablations.changed_settings(out, "memory", ablations.suite_settings("memory", quick=True)) == [
        "stem: patch → conv", "warmup_frames: 2 → 0", "warmup_share: 0.5 → 0.0"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["--minutes", "0"], "--minutes must be > 0"),
        (["--minutes", "-1"], "--minutes must be > 0"),
        (["--max-steps", "0"], "--max-steps must be >= 1"),
        (["--frames", "4"], "--frames 4: num_frames must exceed cue_frames"),
    ],
)
def test_budgets_without_training_and_clips_without_distractors_are_refused(ablations, tmp_path, capsys, bad, message):
    """`--minutes 0` / `--max-steps 0` stored an untrained model's top-1 as a result (`steps: 0`); `--frames 4`
    ended in a ValueError traceback from the data builder."""
    out = tmp_path / "o"
    args = ["--suite", "memory", "--quick", "--variants", "LRU", "--seeds", "1", "--out", str(out)]
    with pytest.raises(SystemExit):
        ablations.main([*args, "--data", str(tmp_path / "d"), *bad])
    assert message in capsys.readouterr().err and not out.exists()


def test_the_markdown_shows_the_warmup_steps(ablations, tmp_path):
    """The warm-up steps were only in ablations_runs.json: the table's steps mixed short and whole-clip steps."""
    out = tmp_path / "out"
    out.mkdir()
    run = {"top1": 0.5, "steps": 100, "cpu_s": 10.0, "wall_s": 11.0, "final_loss": 1.0}
    runs = {
        "RG-LRU": {"64": [{**run, "warmup_steps": 30}, {**run, "steps": 120, "warmup_steps": 50}]},
        "LRU": {"64": [run]},
    }
    ablations.merge_results(out, "memory", runs, {"warmup_frames": 4, "warmup_share": 0.3})
    md = (out / "ablations.md").read_text()
    assert "| RG-LRU | 50.0 ± 0.0 (2) | 110 (40 warm-up) | 10 |" in md and "| LRU | 50.0 ± 0.0 (1) | 100 | 10 |" in md
    assert "w of the n steps trained on the first frames" in md
    ablations.merge_results(out, "memory", {"RG-LRU": {"64": [run]}}, {})  # no warm-up anywhere: no note
    assert "warm-up" not in (out / "ablations.md").read_text()


def test_real_footage_block_models_are_the_recipe_with_the_variant(ablations):
    s = dataclasses.replace(ablations.suite_settings("block"), block_real="camera")
    backbone, args = ablations._real_footage_variants()[ablations.REAL_MODEL]
    recipe = vidssm_config(backbone, args)
    for name, variant in ablations.VARIANTS["block"].items():
        cfg = ablations.build_model("block", variant, s).config
        assert cfg.num_classes == 7 and cfg.img_size == ablations.REAL_SIZE == recipe.img_size, name
        for field in ("width", "rgb_diff", "pixel_mean", "depth", "stem"):
            assert getattr(cfg, field) == getattr(recipe, field), (name, field)
        for field, value in vars(recipe.temporal).items():  # the recipe's temporal fields, but the variant's own
            want = 3 * cfg.width if variant.get(field) == "3D" else variant.get(field, value)
            if field == "conv1d_w_init_variance_scale" and variant["kind"] != "rglru":  # an RG-LRU field only
                want = TemporalConfig.__dataclass_fields__[field].default
            assert getattr(cfg.temporal, field) == want, (name, field)


def vidssm_config(backbone: str, args: dict):
    import vidssm

    return vidssm.models.get_model_config(backbone, num_classes=7, **args)


def test_block_suite_on_real_footage(ablations, tmp_path):
    from vidssm.data.real_motion import RealMotionConfig, build_real_motion

    data = build_real_motion(tmp_path / "rm", RealMotionConfig(frames=8, size=48, train_bases=2, test_bases=1))
    out = tmp_path / "out"
    argv = ["--suite", "block", "--quick", "--seeds", "1", "--real", "camera", "--real-data", str(data)]
    assert ablations.main([*argv, "--out", str(out), "--variants", "no gates", "LRU"]) == 0
    results = json.loads((out / "ablations.json").read_text())["block"]
    assert set(results) == {"no gates", "LRU"} and all(set(r) == {"camera"} for r in results.values())
    clips = np.load(data / "camera" / "test_64px.npy")  # decoded once, resized to the recipe's 64x64
    assert clips.shape == (7, 8, 3, 64, 64) and clips.dtype == np.uint8
    md = (out / "ablations.md").read_text()
    assert "Chance 14%" in md and "the `camera` set of `vidssm data real-motion`" in md  # 7 camera classes
    with pytest.raises(SystemExit):
        ablations.main(["--suite", "memory", "--real", "camera", "--quick", "--out", str(out)])


def test_another_test_count_rebuilds_only_the_test_clips(ablations, tmp_path):
    data = tmp_path / "data"
    argv = ["--suite", "memory", "--quick", "--seeds", "1", "--variants", "RG-LRU", "--data", str(data)]
    assert ablations.main([*argv, "--out", str(tmp_path / "a")]) == 0
    first = {p.name: (p / "meta.json").stat().st_mtime_ns for p in data.iterdir()}
    assert sorted(name.rsplit("f_", 1)[1] for name in first) == ["0_4", "8_0"]  # test and training clips apart
    assert ablations.main([*argv, "--test", "6", "--out", str(tmp_path / "b")]) == 0
    second = {p.name: (p / "meta.json").stat().st_mtime_ns for p in data.iterdir()}
    assert [name.rsplit("f_", 1)[1] for name in set(second) - set(first)] == ["0_6"]  # training clips reused
    assert all(second[name] == stamp for name, stamp in first.items())
    runs = json.loads((tmp_path / "b" / "ablations_runs.json").read_text())["memory"]
    assert runs["_settings"]["num_test"] == 6 and runs["_settings"]["num_train"] == 8
