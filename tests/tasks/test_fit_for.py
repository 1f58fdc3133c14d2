"""`fit_for`: the arguments of its `vidssm fit` and `vidssm test` runs, per budget clock."""

from __future__ import annotations

import pytest

from vidssm.tasks import cli


def _calls(monkeypatch, tmp_path, clock: str) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "train_main", lambda argv: calls.append(list(argv)) or 0)
    run, _ = cli.fit_for(["--config", "x.yaml"], "r", 3, progress_bar=False, clock=clock)
    assert str(run).endswith("r")
    return calls


def _value(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def test_cpu_budget_lifts_the_config_wall_clock_limit(monkeypatch, tmp_path):
    """A config's `trainer.max_time` (10 min in the real-footage recipe) cut CPU budgets short on a busy machine."""
    fit, test = _calls(monkeypatch, tmp_path, "cpu")
    assert fit[0] == "fit" and test[0] == "test"
    assert _value(fit, "--cpu_time_budget") == "180"
    assert _value(fit, "--trainer.max_time") == "null"
    assert "--cpu_time_budget" not in test and "--trainer.max_time" not in test
    assert _value(test, "--ckpt_path").endswith("last.ckpt")


def test_wall_budget_sets_max_time(monkeypatch, tmp_path):
    fit, _ = _calls(monkeypatch, tmp_path, "wall")
    assert _value(fit, "--trainer.max_time") == "00:00:03:00"
    assert "--cpu_time_budget" not in fit
    with pytest.raises(ValueError, match="clock"):
        cli.fit_for([], "r", 1, clock="gpu")


@pytest.mark.parametrize("form", [["--trainer.default_root_dir", "out"], ["--trainer.default_root_dir=out"]])
def test_default_root_dir_moves_the_run_fit_for_tests(monkeypatch, tmp_path, form):
    """fit_for's test run used to look for last.ckpt under runs/ although the fit wrote under the root dir."""
    calls: list[list[str]] = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "train_main", lambda argv: calls.append(list(argv)) or 0)
    run, _ = cli.fit_for(["--config", "x.yaml", *form], "r", 3, progress_bar=False)
    assert str(run) == "out/vidssm/r"
    assert _value(calls[1], "--ckpt_path") == "out/vidssm/r/checkpoints/last.ckpt"
