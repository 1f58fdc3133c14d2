"""`tools/ablations.py --quick` for every suite: the JSON structure, the markdown columns and the plots (a smoke
run of the tool on tiny settings, not a test of accuracy; the full suites are tools, not tests)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

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


def test_quick_run_needs_an_out_folder(ablations, capsys):
    """A smoke run must never merge its numbers into the committed docs/results."""
    with pytest.raises(SystemExit):
        ablations.main(["--suite", "block", "--quick"])
    assert "--quick needs --out" in capsys.readouterr().err
