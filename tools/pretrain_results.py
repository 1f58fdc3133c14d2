"""Label efficiency of masked video pretraining: pretrain on unlabelled clips, fine-tune / probe with few labels.

For each set: `vidssm fit` of `configs/experiments/mae_pretrain_tiny.yaml` on the train split's clips with the
labels ignored (`labels: false`), for `--pretrain_minutes`; then for each label fraction (a stratified, seeded
subset of the train split) three runs of `configs/experiments/finetune_from_mae_tiny.yaml`, each for `--minutes`:

    scratch              the same model from its random init (`init_from: null`)
    pretrained_finetune  every weight from the pretrained backbone, a new head
    linear_probe         the pretrained backbone frozen, only the head trains (`freeze_backbone: true`)

then `vidssm test` on the test split. All three read the same per-frame features, the mean of each frame's patch
tokens (`readout: patch_mean`): the features the masked-video loss trains (it never reads the CLS token). Budgets
are CPU time of the training process (`--cpu_time_budget`), fair when other work shares the machine.

Sets: `mmnist` (Moving-MNIST direction, 4 classes, 32x32) and the real-footage sets of `vidssm data real-motion`:
`camera` (7 camera motions) and `motion` (arrow of time x speed), 96x96, test clips from source videos never seen
in training. A real-footage set is pretrained on the unlabelled train clips of every real set in `--pretrain_sets`
(default: camera and motion), with the real-footage recipe's backbone (`configs/experiments/real_clips_tiny.yaml`:
16x16 patches, zero-centred pixels) at width 128 (`REAL_NARROW`: more steps per CPU-minute).

Writes `docs/results/pretraining.{md,json}` and `pretraining_<set>.gif` (masked test clips: clip, masked input,
reconstruction). The JSON holds the asked keys of the primary set (`--primary`) at the top level,
`{"dataset": ..., "label_fractions": {"0.05": {"scratch": top1, "pretrained_finetune": top1, "linear_probe": top1},
...}, ...}` (top-1 in [0, 1]), and every set in the same layout under `"datasets": {name: {...}}`; sets measured
earlier and not rerun are kept from the existing file. Each run's result is kept in `runs/vidssm/<run>/result.json`;
`--reuse` reads it instead of training again (e.g. after an interrupted session), when it was made under the same
masks, budget, batch and clip length (`run_key`) and, for the variants that start from the pretraining, from the
same pretrained weights (`weights_fingerprint`: a new pretraining runs them again; `--pretrain_run` keeps an earlier
one). An earlier pretraining run is moved aside (`<run>.<date-time>`), not deleted. `--collect` trains nothing, not
even the pretraining: it reads `runs/vidssm/pretrain_<set>` as it is.

    python tools/pretrain_results.py --sets camera --pretrain_minutes 12 --minutes 2.5 --jobs 3
    python tools/pretrain_results.py --sets mmnist --fractions 0.05 1.0 --minutes 0.5 --pretrain_minutes 1
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import multiprocessing
import platform
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import load_file

from vidssm.data.moving_mnist import MovingMNISTConfig, build_moving_mnist
from vidssm.data.real_motion import SETS as REAL_SETS
from vidssm.data.real_motion import RealMotionConfig, build_real_motion
from vidssm.data.real_motion import is_built as real_is_built
from vidssm.models.pretrained import WEIGHTS_NAME
from vidssm.tasks.callbacks import read_metrics
from vidssm.tasks.cli import fit_for, train_main
from vidssm.tasks.pretraining import MaskedVideoPretraining

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "configs" / "experiments"
PRETRAIN = EXPERIMENTS / "mae_pretrain_tiny.yaml"
FINETUNE = EXPERIMENTS / "finetune_from_mae_tiny.yaml"
REAL_ARGS = yaml.safe_load((EXPERIMENTS / "real_clips_tiny.yaml").read_text())["model"]["init_args"]["backbone_args"]
VARIANTS = ("scratch", "pretrained_finetune", "linear_probe")
SET_NAMES = ("mmnist", "camera", "motion")  # --sets
MMNIST_WIDTH = {"width": 96, "num_heads": 3, "mlp_dim": 384, "rep_size": 384, "depth": 3}
# the real-footage recipe at width 128, one recurrence channel per token channel (tools/real_footage_results.py's
# `trecvit_narrow`): about 3x cheaper per step than TRecViT-Ti width
REAL_NARROW = {
    "width": 128,
    "num_heads": 2,
    "mlp_dim": 512,
    "rep_size": 512,
    "temporal": {**REAL_ARGS.get("temporal", {}), "state_multiplier": 1},  # the recipe's other temporal fields kept
}
# pretraining on real clips: light augmentation (flips are harmless without labels), a sample picture every 50 steps
REAL_PRETRAIN_ARGS = (
    "--data.init_args.scale", "[0.7, 1.0]", "--data.init_args.hflip", "true",
    "--model.init_args.warmup_steps", "20", "--model.init_args.image_every_n_steps", "50",
    "--checkpoint_every_n_steps", "25",  # a run killed on a crowded machine (OOM) keeps its last 25-step weights
)  # fmt: skip
READOUT = {"readout": "patch_mean"}  # what every fine-tuning / probe reads (see the module docstring)
WORKERS = 0  # data loader processes per run (0: decoded in the training process; less memory on a shared machine)
FINDINGS = "<!-- findings: written by hand, kept when the table is regenerated -->\n"


@dataclass(frozen=True)
class ClipSet:
    """A labelled clip set in the `csv` annotation format, and the model size it is trained with."""

    name: str
    root: Path
    test_csv: str
    label_map: str
    classes: int
    img_size: int
    backbone_args: dict
    mask_ratio: float
    mask_type: str = "tube"
    pretrain_root: Path | None = None  # the unlabelled clips: `pretrain_csv` relative to it (default: the train split)
    pretrain_csv: Path | None = None
    pretrain_args: tuple[str, ...] = ()  # more CLI arguments of the pretraining run
    pretrain_batch: int | None = None  # default: the fine-tuning batch
    batch_size: int | None = None  # default: --batch_size


def _pretrain_csv(real_data: Path, sets: list[str]) -> Path:
    """One unlabelled annotation file over the train clips of `sets`, paths relative to `real_data` (under runs/)."""
    rows = []
    for name in sets:
        with open(real_data / name / "train.csv", newline="") as f:
            rows += [{"path": f"{name}/{r['path']}", "label": f"{name}_{r['label']}"} for r in csv.DictReader(f)]
    path = Path("runs") / "label_subsets" / f"pretrain_{'_'.join(sets)}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _sets(names: list[str], data: Path, real_data: Path, pretrain_sets: list[str]) -> list[ClipSet]:
    out = []
    if "mmnist" in names:
        build_moving_mnist(data / "mmnist_temporal", MovingMNISTConfig(), progress=False)
        # the recipe's layout (32x32 frames, 8x8 patches) at a narrower width: several runs fit a CPU budget
        args = {**yaml.safe_load(PRETRAIN.read_text())["model"]["init_args"]["backbone_args"], **MMNIST_WIDTH}
        # a 4x4 patch grid: 0.9 would leave 2 patches of 16 visible, too few to see a 16-pixel digit move
        out.append(ClipSet("mmnist_temporal", data / "mmnist_temporal", "test.csv", "labels.json", 4, 32, args, 0.75))
    real = [n for n in ("camera", "motion") if n in names]
    if real:
        cfg = RealMotionConfig()
        if not real_is_built(real_data, cfg):
            build_real_motion(real_data, cfg, progress=False)
        unlabelled = _pretrain_csv(real_data, pretrain_sets)
        for name in real:
            classes = len(REAL_SETS[name])
            root = real_data / name
            args = {**REAL_ARGS, **REAL_NARROW}
            # 36 patches per frame; a new mask per frame (`random`): the recurrence sees every patch position now
            # and then, and filling in a masked patch from the frames before needs the motion since then
            out.append(
                ClipSet(name, root, "test.csv", "label_map.json", classes, 96, args, 0.75, "random", real_data,
                        unlabelled, REAL_PRETRAIN_ARGS, pretrain_batch=4, batch_size=8)
            )  # fmt: skip
    return out


def label_subset(rows: list[dict], fraction: float, seed: int) -> list[dict]:
    """A stratified random `fraction` of `rows` (at least one per class), in the original order."""
    by_class: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_class.setdefault(row["label"], []).append(i)
    keep = []
    for k, (_, idx) in enumerate(sorted(by_class.items())):
        rng = np.random.default_rng([seed, round(fraction * 1e6), k])
        count = max(1, round(fraction * len(idx)))
        keep += rng.choice(idx, size=count, replace=False).tolist()
    return [rows[i] for i in sorted(keep)]


def _write_subset(clips: ClipSet, fraction: float, seed: int) -> Path:
    """The subset's annotation file, under `runs/` (its paths stay relative to the set's root)."""
    with open(clips.root / "train.csv", newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    path = Path("runs") / "label_subsets" / clips.name / f"train_labels{fraction:g}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(label_subset(rows, fraction, seed))
    return path


def _data_args(
    clips: ClipSet, train_csv: Path, batch_size: int, frames: int, backbone_args: dict, root: Path | None = None
) -> list[str]:
    return [
        "--data.init_args.format", "csv", "--data.init_args.root", str(root or clips.root),
        "--data.init_args.train_annotations", str(train_csv),
        "--data.init_args.label_map_file", str(clips.root / clips.label_map),
        "--data.init_args.val_annotations", str(clips.root / clips.test_csv),
        "--data.init_args.img_size", str(clips.img_size), "--data.init_args.scale", "[1.0, 1.0]",
        "--data.init_args.hflip", "false", "--data.init_args.batch_size", str(batch_size),
        "--data.init_args.num_workers", str(WORKERS), "--data.init_args.num_frames", str(frames),
        "--model.init_args.backbone_args", json.dumps(backbone_args),
        "--trainer.max_time", "null", "--trainer.check_val_every_n_epoch", "1000000",  # scored once, by the test
        "--trainer.log_every_n_steps", "5", "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip


def _seconds(minutes: float) -> str:
    return str(int(minutes * 60))


def pretrain(clips: ClipSet, minutes: float, batch_size: int, frames: int) -> tuple[Path, int]:
    """Masked video pretraining on the train clips, labels ignored; returns the run folder and its steps."""
    name = f"pretrain_{clips.name}"
    run = Path("runs") / "vidssm" / name  # a fresh fit moves an earlier run aside (`<run>.<date-time>`), never over it
    unlabelled = clips.pretrain_csv or clips.root / "train.csv"
    data = _data_args(clips, unlabelled, batch_size, frames, clips.backbone_args, clips.pretrain_root)
    if clips.pretrain_root is not None:  # the validation clips, relative to the same root
        data += ["--data.init_args.val_annotations", str(unlabelled)]
    args = [
        "fit", "--config", str(PRETRAIN), *data, "--data.init_args.labels", "false",
        "--model.init_args.mask_ratio", str(clips.mask_ratio), "--model.init_args.mask_type", clips.mask_type,
        "--run_name", name, "--cpu_time_budget", _seconds(minutes), "--trainer.max_epochs", "-1",
        *clips.pretrain_args,
    ]  # fmt: skip
    train_main(args)
    return run, export_pretrained(run)


def export_pretrained(run: Path) -> int:
    """(Re-)exports the backbone of a pretraining run's `last.ckpt` to `<run>/pretrained` with this code (so the
    folder records the readout the current `MaskedVideoPretraining` sets); returns the run's optimiser steps."""
    ckpt = run / "checkpoints" / "last.ckpt"
    task = MaskedVideoPretraining.load_from_checkpoint(ckpt, map_location="cpu")
    shutil.rmtree(run / "pretrained", ignore_errors=True)
    task.backbone.save_pretrained(run / "pretrained")
    return pretrained_steps(run)


def pretrained_steps(run: Path) -> int | None:
    """The optimiser steps of the pretraining run `run` (its `last.ckpt`), None when it has none."""
    ckpt = run / "checkpoints" / "last.ckpt"
    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"]) if ckpt.is_file() else None


def _result_file(clips: ClipSet, fraction: float, variant: str) -> Path:
    return Path("runs") / "vidssm" / f"labels_{clips.name}_{fraction:g}_{variant}" / "result.json"


def run_key(clips: ClipSet, minutes: float, batch_size: int, frames: int, pretrained: str | None = None) -> dict:
    """What a fine-tuning result depends on beyond its name (set, fraction, variant): the pretraining's masks, the
    fine-tuning budget and, for the variants that start from it, the pretrained weights (`pretrained`:
    `weights_fingerprint`; a rerun pretraining, e.g. with another `--pretrain_minutes`, gives other weights). A
    stored result is reused only under the same key (`reusable`)."""
    key = {
        "mask_type": clips.mask_type,
        "mask_ratio": clips.mask_ratio,
        "minutes": minutes,
        "batch_size": batch_size,
        "frames": frames,
    }
    return key if pretrained is None else {**key, "pretrained": pretrained}


def weights_fingerprint(folder: Path | None, variant: str) -> str | None:
    """SHA-256 (16 hex digits) of the tensors (names, dtypes, shapes, values) of the `model.safetensors` a `variant`
    run starts from (`folder`, the exported pretraining); None for `scratch` or when there is none. Not of the file's
    bytes: its header's metadata comes out in a varying order, so two exports of one checkpoint differ as files."""
    weights = None if folder is None or variant == "scratch" else folder / WEIGHTS_NAME
    if weights is None or not weights.is_file():
        return None
    digest = hashlib.sha256()
    for name, tensor in sorted(load_file(weights).items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def reusable(saved: Path, key: dict) -> dict | None:
    """The result stored in `saved` if it was made under `key`; None when there is none or it was made under other
    settings (e.g. another mask type: `--reuse` used to hand back the earlier masks' numbers)."""
    if not saved.is_file():
        return None
    stored = json.loads(saved.read_text())
    return stored if stored.get("key") == key else None


def collected(clips: ClipSet, fraction: float, variant: str, key: dict) -> dict:
    """The result a finished run under `key` left (`finetune`), or None values for a run that has none (not run,
    killed, or run under other settings)."""
    return reusable(_result_file(clips, fraction, variant), key) or {"top1": None, "steps": None}


def finetune(
    clips: ClipSet,
    variant: str,
    fraction: float,
    train_csv: Path,
    folder: Path,
    minutes: float,
    batch_size: int,
    frames: int,
    threads: int,
    reuse: bool = False,
) -> dict:
    """One fine-tuning run and its test top-1 (run in a worker process, on `threads` threads); with `reuse`, the
    result a previous run with the same name and settings (`run_key`) left in `result.json`, if any."""
    saved = _result_file(clips, fraction, variant)
    key = run_key(clips, minutes, batch_size, frames, weights_fingerprint(folder, variant))
    if reuse and (stored := reusable(saved, key)) is not None:
        return stored
    name = saved.parent.name
    torch.set_num_threads(threads)
    init = {"scratch": "null", "pretrained_finetune": str(folder), "linear_probe": str(folder)}[variant]
    backbone_args = {**clips.backbone_args, **READOUT}
    args = [
        "--config", str(FINETUNE), *_data_args(clips, train_csv, batch_size, frames, backbone_args),
        "--data.init_args.test_annotations", str(clips.root / clips.test_csv),
        "--model.init_args.init_from", init,
        "--model.init_args.freeze_backbone", str(variant == "linear_probe").lower(),
    ]  # fmt: skip
    args += ["--model.init_args.warmup_steps", "10"]  # of about 200 steps
    if variant == "linear_probe":  # only the head trains: a probe's usual larger step
        args += ["--model.init_args.lr", "1e-2"]
    shutil.rmtree(Path("runs") / "vidssm" / name, ignore_errors=True)
    run, train_s = fit_for(args, name, minutes, progress_bar=False, clock="cpu")
    series = read_metrics(run / "metrics.csv")
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    top1 = series["test/top1"][-1][1] if "test/top1" in series else float("nan")
    done = {"top1": top1, "steps": int(ckpt["global_step"]), "wall_s": round(train_s), "key": key}
    print({"set": clips.name, "fraction": fraction, "variant": variant, **done}, flush=True)
    saved.write_text(json.dumps(done) + "\n")
    return done


def reconstruction_gif(run: Path, clips: ClipSet, out: Path, num: int = 4) -> Path:
    """GIF of `num` masked test clips (rows: clip, masked input, reconstruction), from the pretraining checkpoint."""
    from PIL import Image

    from vidssm.data.datamodule import VideoDataModule

    task = MaskedVideoPretraining.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu").eval()
    dm = VideoDataModule(
        str(clips.root), format="csv", val_annotations=str(clips.root / clips.test_csv),
        train_annotations=str(clips.root / "train.csv"), labels=False, num_frames=16, stride=1,
        img_size=clips.img_size, batch_size=num, num_workers=0,
    )  # fmt: skip
    dm.setup("validate")
    batch = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        mask = task.masks(batch["index"], batch["video"].shape[1], epoch=0)
        pic = task.reconstruction(batch["video"], mask, task(batch["video"], mask))  # [B, 3, T, 3, H, W]
    images, scale = [], max(1, 96 // clips.img_size)
    for t in range(pic.shape[2]):
        frame = pic[:, :, t].permute(2, 1, 3, 0, 4).flatten(3, 4).flatten(1, 2)  # [3, 3 H, B W]
        img = Image.fromarray((frame.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
        images.append(img.resize((img.width * scale, img.height * scale), Image.NEAREST))
    images[0].save(out, save_all=True, append_images=images[1:], duration=150, loop=0)
    return out


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _markdown(results: list[dict]) -> str:
    out = [
        "# Masked video pretraining: label efficiency (CPU, same fine-tuning budget per run)\n",
        "Recipes `configs/experiments/mae_pretrain_tiny.yaml` (pretraining on unlabelled train clips, labels "
        "ignored) and `configs/experiments/finetune_from_mae_tiny.yaml` (every variant reads the mean of each "
        "frame's patch tokens, `readout: patch_mean`); label subsets stratified and seeded; test top-1 on the test "
        "split; budgets in CPU time of the training process, one torch thread per run.\n",
    ]
    for res in results:
        meta, pre = res["meta"], res["pretrain"]
        unlabelled = f" on {pre['clips']} unlabelled clips" if "clips" in pre else ""
        out.append(
            f"\n## `{res['dataset']}` ({res['classes']} classes, chance {1 / res['classes']:.1%})\n\n"
            f"`python tools/pretrain_results.py {meta['command']}` — torch {meta['torch']}, {meta['cpu']}. "
            f"Pretraining: {pre['minutes']:g} CPU-min, {pre['steps']} steps"
            f"{unlabelled}, {pre.get('mask_type', 'tube')} masks of {pre['mask_ratio']:.0%} of the patches per frame. "
            f"Each fine-tuning / probe: {meta['minutes']:g} CPU-min. Backbone: `{json.dumps(res['backbone_args'])}`."
            "\n"
        )
        if res.get("note"):
            out.append(f"**Note:** {res['note']}\n")
        out.append("| labels | clips | scratch | pretrained + fine-tune | linear probe | fine-tune − scratch |")
        out.append("|---:|---:|---:|---:|---:|---:|")
        for frac, row in res["label_fractions"].items():
            a, b = row.get("scratch"), row.get("pretrained_finetune")
            gain = "—" if a is None or b is None else f"{round(100 * (b - a), 1) + 0.0:+.1f} pts"
            out.append(
                f"| {float(frac):.0%} | {res['clips'][frac]} | {_pct(a)} | {_pct(b)} | "
                f"{_pct(row.get('linear_probe'))} | {gain} |"
            )
        steps = ", ".join(f"{k}: {'not run' if v is None else v}" for k, v in res["steps"].items())
        out.append(f"\nOptimiser steps per run: {steps}.\n")
        if res.get("gif"):
            out.append(f"![masked test clips: clip, masked input, reconstruction]({res['gif']})\n")
    return "\n".join(out) + "\n"


def write_results(out: Path, results: dict[str, dict], primary: str) -> None:
    """`pretraining.json` (the primary set's keys at the top level, every set under `datasets`) and
    `pretraining.md` (tables, then the hand-written findings kept from the existing file)."""
    first = results.get(primary) or next(iter(results.values()))
    doc = {
        "dataset": first["dataset"],
        "label_fractions": first["label_fractions"],
        "primary": "the top-level dataset/label_fractions are the primary set's; every set is under datasets",
        "datasets": results,
    }
    (out / "pretraining.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = out / "pretraining.md"
    findings = md.read_text().split(FINDINGS, 1)[1] if md.is_file() and FINDINGS in md.read_text() else ""
    md.write_text(_markdown([results[k] for k in sorted(results, key=lambda k: k != first["dataset"])]) + "\n"
                  + FINDINGS + findings)  # fmt: skip


def _previous(out: Path) -> dict[str, dict]:
    path = out / "pretraining.json"
    if not path.is_file():
        return {}
    doc = json.loads(path.read_text())
    if "datasets" in doc:
        return doc["datasets"]
    return {r["dataset"]: {**r, "meta": doc.get("meta", {})} for r in doc.get("results", [])}  # the older layout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0, help="CPU minutes of each fine-tuning run")
    parser.add_argument("--pretrain_minutes", type=float, default=8.0, help="CPU minutes of pretraining per set")
    parser.add_argument("--sets", default="mmnist", help="comma-separated: mmnist, camera, motion")
    parser.add_argument("--pretrain_sets", default="camera,motion", help="real sets whose train clips pretrain")
    parser.add_argument("--primary", default="camera", help="the set whose results are the JSON's top-level keys")
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.05, 0.2, 1.0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {VARIANTS}")
    parser.add_argument("--pretrain_run", default=None, help="reuse this pretraining run folder (re-exported)")
    parser.add_argument("--reuse", action="store_true", help="reuse the results of runs that finished before")
    parser.add_argument("--no_write", action="store_true", help="only train (e.g. the scratch runs first)")
    parser.add_argument("--no_gif", action="store_true", help="no reconstruction GIF")
    parser.add_argument(
        "--collect",
        action="store_true",
        help="train nothing (no pretraining either): write the results runs left, from runs/vidssm/pretrain_<set>",
    )
    parser.add_argument("--batch_size", type=int, default=32, help="unless the set fixes it (real sets: 8)")
    parser.add_argument("--frames", type=int, default=16, help="frames per training / test clip")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of every run: on a shared machine, idle OpenMP threads spin and their waiting counts as "
        "CPU time, so budgets are only comparable at one thread",
    )
    parser.add_argument("--jobs", type=int, default=1, help="fine-tuning runs at once (each its own process)")
    parser.add_argument("--data", default=str(ROOT / "data"), help="where Moving-MNIST is built (or found)")
    parser.add_argument(
        "--real_data", default=str(ROOT / "data" / "real_motion"), help="built by `vidssm data real-motion`"
    )
    parser.add_argument(
        "--mask_type", choices=("tube", "random"), default=None, help="masks of the pretraining (default: the set's)"
    )
    parser.add_argument("--mask_ratio", type=float, default=None, help="masked share of the patches (default: set's)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = parser.parse_args(argv)
    if args.mask_ratio is not None and not 0 < args.mask_ratio < 1:
        parser.error(f"--mask_ratio must be in (0, 1), got {args.mask_ratio}")
    for flag in ("threads", "jobs", "batch_size", "frames"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    for flag in ("minutes", "pretrain_minutes"):
        if not getattr(args, flag) > 0:
            parser.error(f"--{flag} must be > 0, got {getattr(args, flag)}")
    if not all(0 < f <= 1 for f in args.fractions):
        parser.error(f"--fractions must be in (0, 1], got {args.fractions}")
    variants = [v for v in VARIANTS if v in args.variants.split(",")]
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown or not variants:  # dropped silently, a typo ran nothing and wrote the set's table empty
        parser.error(f"--variants: unknown {unknown}; choose from {','.join(VARIANTS)}")
    unknown = [n for n in args.sets.split(",") if n not in SET_NAMES]
    if unknown:  # dropped silently: the tool did nothing
        parser.error(f"--sets: unknown {unknown}; choose from {','.join(SET_NAMES)}")
    torch.set_num_threads(args.threads)  # the pretraining runs in this process
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = _previous(out)
    sets = _sets(args.sets.split(","), Path(args.data), Path(args.real_data), args.pretrain_sets.split(","))
    masks = {"mask_type": args.mask_type, "mask_ratio": args.mask_ratio}
    sets = [replace(c, **{k: v for k, v in masks.items() if v is not None}) for c in sets]
    for clips in sets:
        batch = clips.batch_size or args.batch_size
        folder, gif, steps = None, None, 0
        if any(v != "scratch" for v in variants):
            if args.pretrain_run:
                run = Path(args.pretrain_run)
                steps = export_pretrained(run)
            elif args.collect:  # trains nothing: the pretraining the collected runs started from, as it is
                run = Path("runs") / "vidssm" / f"pretrain_{clips.name}"
                steps = pretrained_steps(run)
            else:
                run, steps = pretrain(clips, args.pretrain_minutes, clips.pretrain_batch or batch, args.frames)
            if not args.no_gif and (run / "checkpoints" / "last.ckpt").is_file():
                gif = reconstruction_gif(run, clips, out / f"pretraining_{clips.name}.gif")
            folder = run / "pretrained"
        unlabelled = clips.pretrain_csv or clips.root / "train.csv"
        with open(unlabelled) as f:
            num_unlabelled = sum(1 for _ in f) - 1
        res = {
            "dataset": clips.name,
            "classes": clips.classes,
            "label_fractions": {},
            "clips": {},
            "steps": {},
            "backbone_args": {**clips.backbone_args, **READOUT},
            "pretrain": {
                "steps": steps,
                "mask_ratio": clips.mask_ratio,
                "mask_type": clips.mask_type,
                "minutes": args.pretrain_minutes,
                "clips": num_unlabelled,
            },
            "gif": gif.name if gif else None,
            "meta": {
                "minutes": args.minutes,
                "command": " ".join(
                    f"--{k} {v}"
                    for k, v in (
                        ("sets", clips.name.split("_")[0]),
                        ("pretrain_minutes", f"{args.pretrain_minutes:g}"),
                        ("minutes", f"{args.minutes:g}"),
                        ("jobs", args.jobs),
                        ("frames", args.frames),
                        ("threads", args.threads),
                        ("fractions", " ".join(f"{f:g}" for f in args.fractions)),
                    )
                ),
                "threads": args.threads,
                "jobs": args.jobs,
                "batch_size": batch,
                "torch": torch.__version__,
                "cpu": platform.processor() or platform.machine(),
            },
        }
        subsets = {fraction: _write_subset(clips, fraction, seed=0) for fraction in args.fractions}
        for fraction, path in subsets.items():
            with open(path) as f:
                res["clips"][str(fraction)] = sum(1 for _ in f) - 1
        jobs = [(fraction, variant) for fraction in args.fractions for variant in variants]
        if args.collect:
            keys = {
                v: run_key(clips, args.minutes, batch, args.frames, weights_fingerprint(folder, v)) for v in variants
            }
            done = [collected(clips, f, v, keys[v]) for f, v in jobs]
        else:
            done = _run_all(clips, jobs, subsets, folder, batch, args)
        for (fraction, variant), result in zip(jobs, done, strict=True):
            res["label_fractions"].setdefault(str(fraction), {})[variant] = result["top1"]
            res["steps"][f"{fraction}/{variant}"] = result["steps"]
        if not args.no_write:
            results[clips.name] = res
            write_results(out, results, args.primary)


def _run_all(
    clips: ClipSet, jobs: list, subsets: dict, folder: Path | None, batch: int, args: argparse.Namespace
) -> list[dict]:
    """Every (fraction, variant) fine-tuning of `jobs`, `args.jobs` at a time."""
    # separate processes: each run's CPU budget is its own process's time, so runs in parallel stay fair
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        per_run = (args.frames, args.threads, args.reuse)
        futures = [
            pool.submit(finetune, clips, v, f, subsets[f], folder, args.minutes, batch, *per_run) for f, v in jobs
        ]
        return [f.result() for f in futures]


if __name__ == "__main__":
    main()
