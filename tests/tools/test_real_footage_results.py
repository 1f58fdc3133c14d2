"""`tools/real_footage_results.py`: every variant builds, and each ablation differs from the recipe where it says."""

import sys
from pathlib import Path

import pytest
import yaml

import vidssm

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import real_footage_results as rf  # noqa: E402

RECIPE = yaml.safe_load((Path(rf.ROOT) / "configs/experiments/real_clips_tiny.yaml").read_text())


def config(variant: str):
    backbone, args = rf.VARIANTS[variant]
    return vidssm.models.get_model_config(backbone, num_classes=7, **args)


def test_the_recipe_variant_is_the_yaml_recipe():
    args = RECIPE["model"]["init_args"]["backbone_args"]
    cfg = config("trecvit")
    assert cfg == vidssm.models.get_model_config(RECIPE["model"]["init_args"]["backbone"], num_classes=7, **args)
    assert cfg.rgb_diff == 3.0 and cfg.temporal.conv1d_w_init_variance_scale == 1.0 and cfg.temporal.min_rad == 0.5


@pytest.mark.parametrize(
    "variant, changed",
    [
        ("trecvit_plain", {"rgb_diff": 0.0, "conv1d_w_init_variance_scale": 0.01}),
        ("trecvit_no_rgbdiff", {"rgb_diff": 0.0}),
        ("trecvit_griffin_conv", {"conv1d_w_init_variance_scale": 0.01}),
        ("trecvit_narrow64", {"img_size": 64, "width": 128, "num_heads": 2, "mlp_dim": 512, "rep_size": 512,
                              "state_multiplier": 1}),
        ("trecvit_narrow64_conv", {"img_size": 64, "width": 128, "num_heads": 2, "mlp_dim": 512, "rep_size": 512,
                                   "state_multiplier": 1, "stem": "conv"}),
        ("trecvit_narrow64_p8", {"img_size": 64, "width": 128, "num_heads": 2, "mlp_dim": 512, "rep_size": 512,
                                 "state_multiplier": 1, "patch_size": 8}),
        ("frames", {"kind": "none", "conv1d_w_init_variance_scale": 0.01}),  # no temporal blocks: no Conv1D
        ("frames_narrow64", {"kind": "none", "conv1d_w_init_variance_scale": 0.01, "img_size": 64, "width": 128,
                             "num_heads": 2, "mlp_dim": 512, "rep_size": 512}),
        ("frames_narrow64_p8", {"kind": "none", "conv1d_w_init_variance_scale": 0.01, "img_size": 64, "width": 128,
                                "num_heads": 2, "mlp_dim": 512, "rep_size": 512, "patch_size": 8}),
        ("frames_single", {"kind": "none", "rgb_diff": 0.0, "conv1d_w_init_variance_scale": 0.01}),
    ],
)  # fmt: skip
def test_each_variant_changes_only_what_it_names(variant, changed):
    recipe, cfg = config("trecvit"), config(variant)
    for name in (*vars(recipe), *vars(recipe.temporal)):
        where = cfg.temporal if name in vars(recipe.temporal) and name != "temporal" else cfg
        base = recipe.temporal if where is cfg.temporal else recipe
        if name == "temporal":
            continue
        assert getattr(where, name) == changed.get(name, getattr(base, name)), (variant, name)


@pytest.mark.parametrize(
    "argv", [["--threads", "0"], ["--minutes", "0"], ["--minutes", "nan"], ["--seeds", "0", "-1"]]
)
def test_bad_budget_arguments_exit_naming_the_flag(argv, capsys, tmp_path):
    with pytest.raises(SystemExit):
        rf.main([*argv, "--data", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert argv[0] in capsys.readouterr().err
    assert not (tmp_path / "none").exists()  # refused before building anything


def test_the_help_describes_every_variant():
    """`--help` offered `trecvit_narrow64_conv` as a choice but its Variants list did not say what it is."""
    described = set()
    for line in rf.__doc__.split("Variants", 1)[1].splitlines()[1:]:
        words = line.split()
        if line[4:5].strip():  # a variant's first line (continuation lines are indented further)
            described |= {words[0]} | ({words[2]} if len(words) > 2 and words[1] == "/" else set())  # "a / b  ..."
    assert set(rf.VARIANTS) <= described


def test_order_breakdown_scores_pans_and_zooms_apart_and_reaches_the_table():
    import torch

    names = ["pan_down_up", "pan_left_right", "pan_right_left", "pan_up_down", "zoom_in_out", "zoom_out_in"]
    confusion = torch.zeros(6, 6)
    confusion[:4, :4] = torch.eye(4) * 9  # every pan right (9 clips each) ...
    confusion[0, 1] = 3  # ... but 3 of pan_down_up called pan_left_right
    confusion[4, 4], confusion[4, 5], confusion[5, 5] = 2, 6, 8  # zooms: 10 right of 16
    groups = rf._group_accuracy(names, confusion)
    assert groups == pytest.approx({"pans_top1": 36 / 39, "zooms_top1": 10 / 16})
    row = dict(set="order", variant="trecvit_narrow64_p8", seed=1, test_top1=0.8, steps=3, s_per_step=1.0,
               params_m=1.2, **groups)  # fmt: skip
    meta = dict(minutes=1, clock="cpu", threads=1, torch="x", cpu="y", config="c.yaml", test_sources=["bikes"])
    table = rf._markdown([row], meta)
    assert "| variant | seed | held-out top-1 | pans | zooms |" in table
    assert "| trecvit_narrow64_p8 | 1 | 80.0% | 92.3% | 62.5% |" in table
    assert "pans / zooms: 6-way top-1" in table and "Mean ± std" not in table  # one seed: no means
    two = [row, {**row, "seed": 2, "test_top1": 0.6, "pans_top1": 0.5, "zooms_top1": 0.25}]
    table = rf._markdown(two, meta)
    assert "| trecvit_narrow64_p8 | 2 | 70.0% ± 14.1% | 71.2% ± 29.9% | 43.8% ± 26.5% |" in table


def test_a_data_folder_that_is_not_a_build_is_refused_naming_the_flag(capsys, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("a user's folder")
    with pytest.raises(SystemExit):
        rf.main(["--data", str(tmp_path / "mine"), "--out", str(tmp_path / "out")])
    assert f"--data {tmp_path / 'mine'}: " in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"] and not (tmp_path / "out").exists()
