"""`TrainingReport` and `read_metrics`: a malformed `metrics.csv` is named, and never costs the model its export."""

import logging
from types import SimpleNamespace

import pytest
import torch

from vidssm.models import create_model
from vidssm.models.pretrained import from_pretrained
from vidssm.tasks.callbacks import TrainingReport, read_metrics

GOOD = "epoch,step,train/loss_step,val/top1\n0,4,2.10,\n0,9,1.90,0.5\n"
# two runs appending to one folder: rows wider than the header (seen when a killed run was restarted into it)
MALFORMED = "epoch,step,train/loss_step\n0,4,2.10\n,5,59,,1.94,,\n"


def test_read_metrics_reads_series_and_names_a_malformed_file(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    assert read_metrics(good) == {"train/loss_step": [(4, 2.10), (9, 1.90)], "val/top1": [(9, 0.5)]}
    bad = tmp_path / "bad.csv"
    bad.write_text(MALFORMED)
    with pytest.raises(ValueError, match=r"bad\.csv, line 3: 7 fields under a header of 3"):
        read_metrics(bad)


def test_training_report_exports_the_model_when_the_curves_cannot_be_plotted(tmp_path, caplog):
    (tmp_path / "metrics.csv").write_text(MALFORMED)
    torch.manual_seed(0)
    backbone = create_model("trecvit_debug", num_classes=3)
    trainer = SimpleNamespace(log_dir=str(tmp_path), is_global_zero=True, datamodule=None)
    module = SimpleNamespace(backbone=backbone, objective="clip")
    with caplog.at_level(logging.WARNING, logger="vidssm.tasks.callbacks"):
        TrainingReport().on_fit_end(trainer, module)
    assert "training curves not plotted" in caplog.text and "metrics.csv, line 3" in caplog.text
    loaded = from_pretrained(tmp_path / "pretrained")
    for name, value in backbone.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value, rtol=0, atol=0)
