"""`vidssm fit` killed with SIGKILL mid-epoch and resumed with `--ckpt_path last` ends exactly where an
uninterrupted run ends: same weights, optimiser state, schedule and step (data position and RNG restored)."""

import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
COMMON = [
    "--seed_everything", "0",
    "--model", "vidssm.tasks.classification.ClipClassification",
    "--model.backbone", "trecvit_debug",
    "--model.backbone_args", "{img_size: 32, width: 32, depth: 1, temporal: [rglru], frames_per_clip: 6}",
    "--model.mixup_alpha", "0.4",  # draws from the torch RNG every step
    "--model.warmup_steps", "3",
    "--data", "tests.tasks.synthetic.RampData",
    "--data.n", "48",
    "--data.batch_size", "8",  # 6 steps per epoch
    "--trainer.max_steps", "10",
    "--trainer.accelerator", "cpu",
    "--trainer.enable_progress_bar", "false",
    "--trainer.num_sanity_val_steps", "0",
    "--checkpoint_every_n_steps", "2",
]  # fmt: skip


def _fit(cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "vidssm.cli", "fit", *COMMON, *extra]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _last(cwd: Path, run: str) -> dict:
    return torch.load(cwd / "runs" / "vidssm" / run / "checkpoints" / "last.ckpt", weights_only=False)


def test_kill_9_then_resume_loses_nothing(tmp_path):
    full = _fit(tmp_path, "--run_name", "full")
    assert full.returncode == 0, full.stderr[-3000:]

    kill_cfg = tmp_path / "kill.yaml"
    kill_cfg.write_text(
        "trainer:\n  callbacks:\n    - class_path: tests.tasks.kill.KillAtStep\n      init_args:\n        step: 5\n"
    )
    killed = _fit(tmp_path, "--run_name", "crash", "--config", str(kill_cfg))
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert _last(tmp_path, "crash")["global_step"] == 4  # the last checkpoint before the crash (mid-epoch)

    resumed = _fit(tmp_path, "--run_name", "crash", "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    a, b = _last(tmp_path, "full"), _last(tmp_path, "crash")
    assert a["global_step"] == b["global_step"] == 10
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    opt_a, opt_b = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
    for i in opt_a:
        for k in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(opt_a[i][k], opt_b[i][k]), (i, k)
    assert a["lr_schedulers"][0]["last_epoch"] == b["lr_schedulers"][0]["last_epoch"]
