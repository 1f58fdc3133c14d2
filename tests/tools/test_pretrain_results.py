"""`tools/pretrain_results.py`: stratified label subsets and the results layout (primary set at the top level,
every set under `datasets`, hand-written findings and earlier sets kept)."""

import json
import sys
from pathlib import Path

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
