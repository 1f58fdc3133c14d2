"""`tools/pretrain_results.py`: stratified label subsets and the results layout (primary set at the top level,
every set under `datasets`, hand-written findings and earlier sets kept)."""

import json
import struct
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import pretrain_results  # noqa: E402


def test_label_subset_is_stratified_seeded_and_keeps_one_per_class():
    rows = [{"path": f"{i}.mp4", "label": "ab"[i % 2] if i < 40 else "c"} for i in range(42)]  # 20 a, 20 b, 2 c
    sub = pretrain_results.label_subset(rows, 0.1, seed=0)
    counts = {k: sum(r["label"] == k for r in sub) for k in "abc"}
    assert counts == {"a": 2, "b": 2, "c": 1}
    assert sub == sorted(sub, key=lambda r: int(r["path"].split(".")[0]))  # the original order
    assert sub == pretrain_results.label_subset(rows, 0.1, seed=0)
    assert sub != pretrain_results.label_subset(rows, 0.1, seed=1)


def _result(name: str, top1: float) -> dict:
    row = {"scratch": top1, "pretrained_finetune": top1 + 0.25, "linear_probe": None}
    return {
        "dataset": name, "classes": 4, "label_fractions": {"0.05": row}, "clips": {"0.05": 3}, "steps": {},
        "backbone_args": {}, "pretrain": {"steps": 7, "mask_ratio": 0.75, "minutes": 1}, "gif": None,
        "meta": {"minutes": 1, "command": f"--sets {name}", "torch": "t", "cpu": "c"},
    }  # fmt: skip


def test_results_keep_the_asked_keys_for_the_primary_set_and_every_set_under_datasets(tmp_path):
    (tmp_path / "pretraining.md").write_text("old table\n" + pretrain_results.FINDINGS + "hand-written\n")
    pretrain_results.write_results(tmp_path, {"mmnist_temporal": _result("mmnist_temporal", 0.5)}, "camera")
    results = pretrain_results._previous(tmp_path)
    results["camera"] = _result("camera", 0.125)
    pretrain_results.write_results(tmp_path, results, "camera")
    doc = json.loads((tmp_path / "pretraining.json").read_text())
    assert doc["dataset"] == "camera"
    assert doc["label_fractions"] == {"0.05": {"scratch": 0.125, "pretrained_finetune": 0.375, "linear_probe": None}}
    assert sorted(doc["datasets"]) == ["camera", "mmnist_temporal"]
    md = (tmp_path / "pretraining.md").read_text()
    assert md.index("## `camera`") < md.index("## `mmnist_temporal`")  # the primary set first
    assert "| 5% | 3 | 12.5% | 37.5% | — | +25.0 pts |" in md
    assert md.endswith(pretrain_results.FINDINGS + "hand-written\n") and "old table" not in md


def test_mask_arguments_are_checked_before_any_work(capsys, tmp_path):
    import pytest

    bad_args = (
        ["--mask_ratio", "1.5"], ["--mask_type", "block"], ["--threads", "0"], ["--jobs", "0"], ["--minutes", "0"],
        ["--pretrain_minutes", "nan"], ["--fractions", "0"], ["--fractions", "0.5", "2"],
    )  # fmt: skip
    for bad in bad_args:
        with pytest.raises(SystemExit):
            pretrain_results.main(
                [*bad, "--sets", "camera", "--real_data", str(tmp_path / "rd"), "--out", str(tmp_path)]
            )
        assert bad[0] in capsys.readouterr().err
    assert not (tmp_path / "rd").exists()


def test_reuse_hands_back_only_results_made_under_the_same_masks_and_budget(tmp_path, monkeypatch):
    from dataclasses import replace

    monkeypatch.chdir(tmp_path)  # the tool keeps its runs under ./runs
    tube = pretrain_results.ClipSet("camera", tmp_path, "test.csv", "labels.txt", 7, 64, {}, 0.9, "tube")
    random = replace(tube, mask_type="random", mask_ratio=0.75)
    saved = pretrain_results._result_file(tube, 0.05, "pretrained_finetune")
    saved.parent.mkdir(parents=True)
    key = pretrain_results.run_key(tube, 4.0, 8, 16)
    saved.write_text(json.dumps({"top1": 0.25, "steps": 9, "wall_s": 1, "key": key}))
    assert pretrain_results.reusable(saved, key)["top1"] == 0.25
    assert pretrain_results.collected(tube, 0.05, "pretrained_finetune", key)["top1"] == 0.25
    for other in (
        pretrain_results.run_key(random, 4.0, 8, 16),  # other masks
        pretrain_results.run_key(tube, 8.0, 8, 16),  # another budget
        pretrain_results.run_key(tube, 4.0, 8, 32),  # longer clips
    ):
        assert pretrain_results.reusable(saved, other) is None
        assert pretrain_results.collected(tube, 0.05, "pretrained_finetune", other) == {"top1": None, "steps": None}
    saved.write_text(json.dumps({"top1": 0.25, "steps": 9}))  # a result from before the key was stored
    assert pretrain_results.reusable(saved, key) is None
    assert pretrain_results.reusable(tmp_path / "missing.json", key) is None


def test_reuse_needs_the_same_pretrained_weights(tmp_path, monkeypatch):
    """A rerun pretraining (e.g. `--reuse --pretrain_minutes 12` after an 8-minute run) gives other weights, but the
    key held only the masks and the fine-tuning budget: the fine-tunings of the old weights were handed back."""
    monkeypatch.chdir(tmp_path)
    clips = pretrain_results.ClipSet("camera", tmp_path, "test.csv", "labels.txt", 7, 64, {}, 0.75, "random")
    old, new = tmp_path / "old", tmp_path / "new"
    for folder, value in ((old, 8.0), (new, 12.0)):
        folder.mkdir()
        save_file({"w": torch.full((2, 3), value)}, str(folder / "model.safetensors"))
    saved = pretrain_results._result_file(clips, 1.0, "pretrained_finetune")
    saved.parent.mkdir(parents=True)
    stored = {"top1": 0.5, "steps": 9, "wall_s": 1}
    key = pretrain_results.run_key(clips, 2.0, 8, 16, pretrain_results.weights_fingerprint(old, "pretrained_finetune"))
    saved.write_text(json.dumps({**stored, "key": key}))
    args = (clips, "pretrained_finetune", 1.0, tmp_path / "train.csv")
    assert pretrain_results.finetune(*args, old, 2.0, 8, 16, 1, reuse=True)["top1"] == 0.5
    monkeypatch.setattr(pretrain_results, "fit_for", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("trained")))
    with pytest.raises(RuntimeError, match="trained"):  # trains again instead of handing back the old weights' result
        pretrain_results.finetune(*args, new, 2.0, 8, 16, 1, reuse=True)
    assert pretrain_results.weights_fingerprint(new, "scratch") is None  # scratch does not depend on them
    assert pretrain_results.run_key(clips, 2.0, 8, 16) == pretrain_results.run_key(clips, 2.0, 8, 16, None)


def test_collect_trains_nothing_and_reads_the_existing_pretraining(tmp_path, monkeypatch):
    """`--collect` ("train nothing") ran a full pretraining of --pretrain_minutes (default 8 CPU min) and moved the
    pretraining the collected fine-tunings came from aside."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "set"
    root.mkdir()
    (root / "train.csv").write_text("path,label\n" + "".join(f"{i}.mp4,{i % 2}\n" for i in range(6)))
    clips = pretrain_results.ClipSet("toy", root, "test.csv", "labels.txt", 2, 32, {}, 0.75)
    monkeypatch.setattr(pretrain_results, "_sets", lambda *a: [clips])
    monkeypatch.setattr(pretrain_results, "pretrain", lambda *a: (_ for _ in ()).throw(RuntimeError("pretrained")))
    run = tmp_path / "runs" / "vidssm" / "pretrain_toy"
    (run / "pretrained").mkdir(parents=True)
    save_file({"w": torch.ones(3)}, str(run / "pretrained" / "model.safetensors"))
    fingerprint = pretrain_results.weights_fingerprint(run / "pretrained", "linear_probe")
    saved = pretrain_results._result_file(clips, 1.0, "linear_probe")
    saved.parent.mkdir(parents=True)
    key = pretrain_results.run_key(clips, 2.0, 32, 16, fingerprint)
    saved.write_text(json.dumps({"top1": 0.75, "steps": 5, "key": key}))
    out = tmp_path / "out"
    pretrain_results.main(
        ["--collect", "--sets", "mmnist", "--fractions", "1.0", "--primary", "toy", "--out", str(out)]
    )
    doc = json.loads((out / "pretraining.json").read_text())
    assert doc["label_fractions"]["1.0"] == {"scratch": None, "pretrained_finetune": None, "linear_probe": 0.75}
    assert doc["datasets"]["toy"]["pretrain"]["steps"] is None  # no checkpoint in the toy run
    assert sorted(p.name for p in run.parent.iterdir()) == sorted(["pretrain_toy", "labels_toy_1_linear_probe"])


def test_the_fingerprint_is_of_the_tensors_not_of_the_file(tmp_path):
    """Two exports of one checkpoint differ as files (the header's metadata comes out in a varying order: measured on
    runs/vidssm/pretrain_camera), so a hash of the bytes would never let `--pretrain_run` reuse a fine-tuning."""
    tensors = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.ones(4, dtype=torch.bfloat16)}
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
    save_file(tensors, str(first / "model.safetensors"), metadata={"format": "pt", "architecture": "TRecViT"})
    data = (first / "model.safetensors").read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + size])
    swapped = json.dumps({"__metadata__": dict(reversed(header.pop("__metadata__").items())), **header})
    swapped = swapped.replace(" ", "").ljust(size).encode()  # the same tensors, the metadata in the other order
    (second / "model.safetensors").write_bytes(data[:8] + swapped + data[8 + size :])
    assert (second / "model.safetensors").read_bytes() != data
    fingerprint = pretrain_results.weights_fingerprint(first, "linear_probe")
    assert fingerprint == pretrain_results.weights_fingerprint(second, "pretrained_finetune")
    for changed in (
        {**tensors, "a": torch.zeros(4, dtype=torch.bfloat16)},
        {**tensors, "b": tensors["b"].reshape(3, 2)},
        {**tensors, "b": tensors["b"].double()},
    ):
        save_file(changed, str(second / "model.safetensors"))
        assert pretrain_results.weights_fingerprint(second, "linear_probe") != fingerprint


@pytest.mark.parametrize(
    ("flag", "value"), [("--variants", "scratch,linear-probe"), ("--variants", "probe"), ("--sets", "mnist")]
)
def test_unknown_variants_and_sets_are_refused(tmp_path, monkeypatch, capsys, flag, value):
    """`--variants probe` (a typo) ran nothing and rewrote the set's stored table empty; `--sets mnist` did nothing."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pretrain_results, "_sets", lambda *a: (_ for _ in ()).throw(RuntimeError("started")))
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        pretrain_results.main([flag, value, "--out", str(out)])
    assert f"{flag}: unknown" in capsys.readouterr().err and not out.exists()
