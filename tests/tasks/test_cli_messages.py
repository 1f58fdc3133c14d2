"""`vidssm fit` tells the user what went wrong and how to override one backbone field."""

from __future__ import annotations

import pytest

from tests.cli_helpers import instantiate
from vidssm.tasks.cli import BACKBONE_ARGS_HELP, train_main

BASE = [
    "--model", "vidssm.tasks.classification.ClipClassification",
    "--data", "tests.tasks.synthetic.RampData", "--trainer.accelerator", "cpu", "--trainer.max_steps", "1",
]  # fmt: skip


@pytest.mark.parametrize(
    "extra, last_line",
    [
        (
            ["--model.backbone", "trecvit_tinny"],
            "error: KeyError: unknown model 'trecvit_tinny'; did you mean 'trecvit_tiny'",
        ),
        (
            ["--model.backbone", "trecvit_debug", "--model.backbone_args", '{"temporal": {"kind": "bogus"}}'],
            "error: ValueError: unknown temporal block kind 'bogus'",
        ),
    ],
)
def test_a_model_construction_error_ends_with_its_root_cause(extra, last_line, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        train_main(["fit", *BASE, *extra])
    message = exit_info.value.code  # what the interpreter prints last, exit status 1
    assert isinstance(message, str) and message.startswith(last_line) and "\n" not in message
    assert "Does not validate against any of the Union subtypes" in capsys.readouterr().err  # the full trace too


def test_fit_help_says_to_use_the_dotted_form(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_main(["fit", "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--model.init_args.backbone_args.depth 2" in out and "REPLACES the config's backbone_args" in out
    assert "dotted form" in BACKBONE_ARGS_HELP


def test_the_dotted_form_merges_into_the_config_dict(tmp_path):
    config = tmp_path / "recipe.yaml"
    config.write_text(
        "model:\n  class_path: vidssm.tasks.classification.ClipClassification\n  init_args:\n"
        "    backbone: trecvit_debug\n"
        "    backbone_args: {img_size: 32, depth: 1, pixel_mean: [0.5, 0.5, 0.5], pixel_std: [0.5, 0.5, 0.5]}\n"
        "data:\n  class_path: tests.tasks.synthetic.RampData\n"
    )
    common = ["--config", str(config), "--trainer.accelerator", "cpu", "--trainer.max_steps", "1"]
    dotted = instantiate([*common, "--model.init_args.backbone_args.depth", "2"]).model.backbone.config
    assert (dotted.depth, dotted.img_size, dotted.pixel_mean) == (2, 32, (0.5, 0.5, 0.5))
    whole = instantiate([*common, "--model.init_args.backbone_args", '{"depth": 2}']).model.backbone.config
    assert (whole.depth, whole.pixel_mean) == (2, None)  # what the help warns about: the dict is replaced


def test_a_recipe_without_its_data_root_says_what_to_type(capsys, tmp_path, monkeypatch):
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[2] / "configs" / "experiments" / "real_clips_tiny.yaml"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        train_main(["fit", "--config", str(recipe)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: root" in err
    assert err.count("hint: give the dataset folder on the command line: --data.init_args.root DIR") == 1
    assert err.rstrip().splitlines()[-1].startswith("hint: ")  # the last line, where the eye lands
    assert not (tmp_path / "runs").exists()  # nothing started


def test_fit_and_test_say_where_the_run_is(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train_main(["fit", *BASE, "--model.backbone", "trecvit_debug", "--run_name", "where"])
    out = capsys.readouterr().out
    assert "run folder: runs/vidssm/where (checkpoints/" in out and (tmp_path / "runs/vidssm/where").is_dir()
    ckpt = tmp_path / "runs/vidssm/where/checkpoints/last.ckpt"
    import warnings

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        args = ["--model.backbone", "trecvit_debug", "--run_name", "where", "--ckpt_path", str(ckpt)]
        train_main(["test", *BASE, *args])
    assert "run folder: runs/vidssm/where (metrics.csv" in capsys.readouterr().out
    assert not [w for w in record if "Previous log files" in str(w.message)]  # vidssm keeps them: no such warning
    assert (tmp_path / "runs/vidssm/where/metrics_fit.csv").is_file()
