"""Memorisation check: can a model fit a handful of real training clips? The first check of a from-scratch recipe.

Takes the first `--clips` training clips of a real-footage set (`vidssm data real-motion`), fixed (no augmentation),
and trains each variant of `tools/real_footage_results.py` on them with AdamW (batches drawn from those clips,
gradient norm clipped to 1.0, the recipe's learning rate and weight decay) for `--steps` steps, logging the loss
and the accuracy on the same clips every `--every` steps. A model that cannot memorise 32 clips in a few dozen
steps will not learn the task in a small budget; one that can, but does not generalise, needs data or priors.
Writes `docs/results/real_footage_memorise.{json,md}` (merged with earlier variants unless `--fresh`).

    python tools/memorise_check.py --set camera --clips 32 --steps 60 --variants c3d trecvit trecvit_raw
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

import vidssm
from vidssm.data.datamodule import VideoDataModule
from vidssm.data.real_motion import SETS, RealMotionConfig, build_real_motion, is_built

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_footage_results import RECIPE_ARGS, VARIANTS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# the recipe's clip sampling (configs/data/real_clips.yaml): 16 consecutive frames (stride 1), not the data module's
# default stride 2, which spans 31 frames and repeats frames of the 16-frame real-motion clips
RECIPE_DATA = yaml.safe_load((ROOT / "configs" / "data" / "real_clips.yaml").read_text())["init_args"]


def load_clips(root: Path, clips: int, img_size: int, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `clips` training clips of `root` as `[N, T, 3, H, W]` floats in [0, 1] and labels `[N]`."""
    dm = VideoDataModule(
        root=str(root),
        format="csv",
        train_annotations=str(root / "train.csv"),
        val_annotations=str(root / "test.csv"),
        label_map_file=str(root / "label_map.json"),
        num_frames=num_frames,
        stride=RECIPE_DATA["stride"],
        img_size=img_size,
        scale=(1.0, 1.0),
        hflip=False,
        batch_size=clips,
        num_workers=0,
        seed=0,
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    return batch["video"], batch["label"]


def build(variant: str, num_classes: int) -> torch.nn.Module:
    """A variant of `tools/real_footage_results.py`, built directly (no Lightning)."""
    backbone, args = VARIANTS[variant]
    if isinstance(backbone, dict):
        module, name = backbone["class_path"].rsplit(".", 1)
        cls = getattr(__import__(module, fromlist=[name]), name)
        return cls(**{**backbone["init_args"], "num_classes": num_classes})
    return vidssm.create_model(backbone, num_classes=num_classes, **(args or {}))


def memorise(
    model: torch.nn.Module,
    video: torch.Tensor,
    label: torch.Tensor,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    every: int,
    seed: int,
) -> list[dict]:
    """Trains `model` on the fixed clips and returns `[{step, loss, train_top1, seconds}]` every `every` steps."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    curve, start = [], time.process_time()
    for step in tqdm(range(1, steps + 1), desc="steps", leave=False):
        idx = torch.randperm(len(label), generator=gen)[:batch_size]
        loss = F.cross_entropy(model(video[idx]), label[idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % every == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                acc = torch.cat([model(v).argmax(-1) for v in video.split(batch_size)]).eq(label).float().mean()
            model.train()
            curve.append(
                dict(
                    step=step,
                    loss=round(loss.item(), 4),
                    train_top1=round(acc.item(), 4),
                    cpu_seconds=round(time.process_time() - start, 1),
                )
            )
    return curve


def _markdown(results: dict) -> str:
    lines = [
        "# Memorisation check on real footage",
        "",
        "`python tools/memorise_check.py` — the first clips of the "
        "training split, fixed, no augmentation; accuracy on those same clips (not held-out).",
        "",
    ]
    lines += [
        "| set | variant | clips | lr | steps | final loss | train top-1 | curve (step: top-1) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for key in sorted(results):
        r = results[key]
        curve = ", ".join(f"{c['step']}: {c['train_top1']:.0%}" for c in r["curve"])
        last = r["curve"][-1]
        lines.append(
            f"| {r['set']} | {r['variant']} | {r['clips']} | {r['lr']:g} | {last['step']} | "
            f"{last['loss']:.3f} | {last['train_top1']:.1%} | {curve} |"
        )
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--set", default="camera", choices=list(SETS), help="which real-footage set's clips to fit")
    parser.add_argument("--clips", type=int, default=32, help="number of training clips to memorise (the first N)")
    parser.add_argument("--steps", type=int, default=60, help="optimiser steps per variant")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per step, drawn from the fixed clips")
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (constant)")
    parser.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay")
    parser.add_argument("--every", type=int, default=10, help="log loss and accuracy every N steps (and at the end)")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["c3d", "trecvit", "trecvit_raw"],
        choices=list(VARIANTS),
        help="models to check (the variants of tools/real_footage_results.py)",
    )
    parser.add_argument(
        "--data",
        default=str(ROOT / "data" / "real_motion"),
        help="real-footage build folder (built there with `vidssm data real-motion` defaults if missing)",
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"), help="folder for the .json and .md results")
    parser.add_argument("--fresh", action="store_true", help="drop earlier results instead of merging")
    return parser


def main() -> None:
    args = _parser().parse_args()

    data = Path(args.data)
    if not is_built(data, RealMotionConfig()):
        build_real_motion(data, RealMotionConfig())
    root = data / args.set
    num_classes = len(json.loads((root / "labels.json").read_text()))
    video, label = load_clips(root, args.clips, RECIPE_ARGS["img_size"], RECIPE_ARGS["frames_per_clip"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "real_footage_memorise.json"
    results = {} if args.fresh or not path.exists() else json.loads(path.read_text())
    for variant in args.variants:
        torch.manual_seed(0)
        model = build(variant, num_classes)
        curve = memorise(model, video, label, args.steps, args.batch_size, args.lr, args.weight_decay, args.every, 0)
        results[f"{args.set}/{variant}/lr{args.lr:g}"] = dict(
            set=args.set, variant=variant, clips=args.clips, lr=args.lr, curve=curve
        )
        print(f"{variant:16s} " + " ".join(f"{c['step']}:{c['train_top1']:.0%}" for c in curve), flush=True)
        path.write_text(json.dumps(results, indent=1))
        (out / "real_footage_memorise.md").write_text(_markdown(results))


if __name__ == "__main__":
    main()
