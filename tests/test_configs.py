"""Every YAML file under `configs/` parses and instantiates (model, data module and trainer) as `vidssm fit` would
build it: experiments whole, model / data / trainer files composed with the pieces they go with. A recipe whose
class path, argument name or value no longer fits the code fails here. Data paths are tmp folders holding
annotation files of the right format (no videos: nothing is read before fitting)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from jsonargparse import ArgumentParser
from lightning.pytorch.strategies import Strategy

from tests.cli_helpers import instantiate

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
ALL = sorted(p.relative_to(CONFIGS).as_posix() for p in CONFIGS.rglob("*.yaml"))
BASE = CONFIGS / "experiments" / "mmnist_temporal_tiny.yaml"  # what a model/data/trainer file is composed with
NO_GPU = ["--trainer.accelerator", "cpu", "--trainer.devices", "1"]


def _annotations(tmp: Path) -> dict[str, list[str]]:
    """Data flags per format, pointing at minimal annotation files with two classes."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "train.csv").write_text("path,label\na.mp4,left\nb.mp4,right\n")
    (tmp / "labels.json").write_text(json.dumps({"Pushing something": "0", "Tearing something": "1"}))
    (tmp / "train.json").write_text(json.dumps([{"id": "1", "template": "Pushing [something]"}]))
    (tmp / "k400.csv").write_text("label,youtube_id,time_start,time_end\nzumba,abc,0,10\nyoga,def,5,15\n")
    ucf = tmp / "ucfTrainTestlist"
    ucf.mkdir(exist_ok=True)
    (ucf / "classInd.txt").write_text("1 Archery\n2 YoYo\n")
    (ucf / "trainlist01.txt").write_text("Archery/v_Archery_g01_c01.avi 1\nYoYo/v_YoYo_g01_c01.avi 2\n")
    (ucf / "testlist01.txt").write_text("YoYo/v_YoYo_g02_c01.avi\n")
    root = ["--data.init_args.root", str(tmp)]
    for name in ("left", "right"):  # a folder-per-class video folder; the files are listed, never decoded
        (tmp / "videos" / name).mkdir(parents=True, exist_ok=True)
        (tmp / "videos" / name / f"{name}.mp4").touch()

    def ann(train: Path) -> list[str]:
        return ["--data.init_args.train_annotations", str(train), "--data.init_args.val_annotations", str(train)]

    return {
        "csv": root + ann(tmp / "train.csv"),
        "ssv2": root + ann(tmp / "train.json") + ["--data.init_args.labels_file", str(tmp / "labels.json")],
        "kinetics": root + ann(tmp / "k400.csv"),
        "ucf101": root + ann(ucf),
        "mmnist": root,
        "folder": ["--data.init_args.root", str(tmp / "videos")],
    }


def _load(path: Path, value):
    """A config value, following a relative path to another YAML file as jsonargparse does."""
    if isinstance(value, str) and value.endswith(".yaml"):
        return yaml.safe_load((path.parent / value).read_text())
    return value


def _data_kind(config: dict, ref: Path) -> str:
    data = _load(ref, config["data"])
    if data["class_path"].endswith("MovingMNISTDataModule"):
        return "mmnist"
    return data["init_args"]["format"]


def _args_for(name: str, data_flags: dict[str, list[str]]) -> tuple[list[str], dict]:
    """Command-line arguments that build `configs/<name>`, and the config file they rest on."""
    path = CONFIGS / name
    folder = name.split("/")[0]
    if folder == "experiments":
        return ["--config", str(path)], yaml.safe_load(path.read_text())
    base = yaml.safe_load(BASE.read_text())
    if folder == "model":
        data = "mmnist_prediction.yaml" if "prediction" in name else "mmnist_temporal.yaml"
        args = ["--config", str(BASE), "--model", str(path), "--data", str(CONFIGS / "data" / data)]
        return args, {**base, "model": yaml.safe_load(path.read_text()), "data": f"../data/{data}"}
    if folder == "data":
        model = "prediction_trecvit_tiny.yaml" if "prediction" in name else "classification_trecvit_tiny.yaml"
        args = ["--config", str(BASE), "--data", str(path), "--model", str(CONFIGS / "model" / model)]
        return args, {**base, "data": yaml.safe_load(path.read_text()), "model": f"../model/{model}"}
    if folder == "trainer":
        content = yaml.safe_load(path.read_text())
        if "trainer" in content:  # a whole-config fragment (ema.yaml), given as another --config
            return ["--config", str(BASE), "--config", str(path)], {**base, "trainer": content["trainer"]}
        return ["--config", str(BASE), "--trainer", str(path)], {**base, "trainer": content}
    raise AssertionError(f"configs/{name}: a new config folder; teach tests/test_configs.py how to build it")


def _strategy(spec: dict) -> Strategy:
    """A strategy built from its config alone, as LightningCLI types it (for GPU-only strategies on a CPU host)."""
    parser = ArgumentParser()
    parser.add_argument("--strategy", type=Strategy | str)
    build = getattr(parser, "instantiate", None) or parser.instantiate_classes  # jsonargparse < 4.49: the old name
    return build(parser.parse_object({"strategy": spec})).strategy


@pytest.mark.parametrize("name", ALL)
def test_config_instantiates(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything relative (data/mmnist_*, runs/) lands in the tmp folder
    data_flags = _annotations(tmp_path / "data")
    args, config = _args_for(name, data_flags)
    ref = CONFIGS / name if name.startswith("experiments/") else BASE  # relative paths in `config` start here
    args += data_flags[_data_kind(config, ref)]
    if (_load(ref, config["model"]).get("init_args") or {}).get("init_from"):
        args += ["--model.init_args.init_from", "null"]  # another run's output: tests/tasks/test_pretraining.py
    trainer = _load(ref, config.get("trainer", {})) or {}
    if trainer.get("accelerator") == "gpu" and not torch.cuda.is_available():
        args += NO_GPU  # the same trainer otherwise (strategy, precision, callbacks)
        strategy = trainer.get("strategy")
        if isinstance(strategy, dict) and "FSDP" in strategy["class_path"]:  # needs CUDA devices to attach to
            built = _strategy(strategy)
            assert type(built).__name__ == strategy["class_path"].rsplit(".", 1)[-1]
            assert built.sharding_strategy.name == strategy["init_args"]["sharding_strategy"]
            args += ["--trainer.strategy", "auto"]

    cli = instantiate(args)

    model = _load(ref, config["model"])
    assert type(cli.model).__module__ + "." + type(cli.model).__name__ == model["class_path"]
    for key, value in model.get("init_args", {}).items():
        if key == "backbone_args":
            for field, v in value.items():
                got = getattr(cli.model.backbone.config, field)
                for sub, sv in v.items() if isinstance(v, dict) else [(None, v)]:  # a nested config: its fields
                    want = tuple(sv) if isinstance(sv, list) else sv
                    assert (got if sub is None else getattr(got, sub)) == want, (field, sub)
        elif key != "init_from":
            assert cli.model.hparams[key] == value, key
    assert isinstance(cli.datamodule, L.LightningDataModule)
    if cli.datamodule.num_classes:  # linked into the model's head
        assert cli.model.backbone.head.cls_head.out_features == cli.datamodule.num_classes
    assert isinstance(cli.trainer, L.Trainer)
    for cb in trainer.get("callbacks", []):
        assert any(type(c).__name__ == cb["class_path"].rsplit(".", 1)[-1] for c in cli.trainer.callbacks)
    if "max_steps" in trainer:
        assert cli.trainer.max_steps == trainer["max_steps"]
