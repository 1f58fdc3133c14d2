"""The `vidssm` command line and the `make demo` job."""

from vidssm import cli, parity


def test_list_models(capsys):
    assert cli.main(["list-models", "trecvit_tiny*"]) == 0
    names = capsys.readouterr().out.split()
    assert "trecvit_tiny" in names and "trecvit_tiny_hybrid" in names and "trecvit_base" not in names


def test_parity_reports_ok(capsys):
    assert parity.main(["--frames", "4", "--img-size", "32", "--depth", "2", "--models", "trecvit_tiny_hybrid"]) == 0
    out = capsys.readouterr().out
    assert "trecvit_tiny_hybrid" in out and out.rstrip().endswith("OK")


def test_export_command(tmp_path, capsys):
    import onnx

    import vidssm

    vidssm.create_model("trecvit_debug").save_pretrained(tmp_path / "m")
    out = tmp_path / "step.onnx"
    rc = cli.main(
        ["export", "--checkpoint", str(tmp_path / "m"), "--format", "onnx", "--what", "step", "--out", str(out)]
    )
    assert rc == 0 and "exported step" in capsys.readouterr().out
    assert onnx.load(str(out)).graph.input[0].name == "frame"


def test_unknown_command_prints_usage(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "commands:" in capsys.readouterr().out


def test_export_of_a_training_checkpoint_is_one_line_pointing_at_the_pretrained_folder(tmp_path, capsys):
    import pytest

    ckpt = tmp_path / "runs" / "vidssm" / "r1" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a folder")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert f"--checkpoint {ckpt}" in err and str(tmp_path / "runs" / "vidssm" / "r1" / "pretrained") in err
