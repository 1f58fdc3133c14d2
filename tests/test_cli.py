"""The `vidssm` command line and the `make demo` job."""

from vidssm import cli, demo


def test_list_models(capsys):
    assert cli.main(["list-models", "trecvit_tiny*"]) == 0
    names = capsys.readouterr().out.split()
    assert "trecvit_tiny" in names and "trecvit_tiny_hybrid" in names and "trecvit_base" not in names


def test_demo_reports_parity(capsys):
    assert demo.main(["--frames", "4", "--img-size", "32", "--depth", "2", "--models", "trecvit_tiny_hybrid"]) == 0
    out = capsys.readouterr().out
    assert "trecvit_tiny_hybrid" in out and out.rstrip().endswith("OK")
