"""Re-runnable real-footage results: the small-dataset recipe against same-budget baselines, on held-out footage.

Builds the real-footage sets (`vidssm data real-motion`, nothing downloaded) when missing, then for each set and
each variant runs `vidssm fit` with `configs/experiments/real_clips_tiny.yaml` for `--minutes` of training (CPU time
of the training process by default: fair when other work shares the machine; `--clock wall` for wall-clock), then
`vidssm test` on clips cut from source videos never seen in training. Writes
`docs/results/real_footage.{md,json,png}`: held-out top-1, steps, s/step and training curves.

    python tools/real_footage_results.py --minutes 4
    python tools/real_footage_results.py --minutes 2 --sets motion --variants trecvit trecvit_raw

Variants (all fed by the same `VideoDataModule` batches, same optimiser and schedule):
    trecvit        the recipe: TRecViT-Ti width, depth 4, 16x16 patches, RG-LRU temporal blocks, [-1, 1] pixels,
                   RGB-difference tokens (`rgb_diff`), Conv1D init variance scale 1.0
    trecvit_plain  the recipe without rgb_diff and with Griffin's Conv1D init (the recipe before; TRecViT's own)
    trecvit_no_rgbdiff / trecvit_griffin_conv   the recipe without one of the two (ablation)
    trecvit_raw    trecvit_plain fed raw [0, 1] pixels (no pixel normalisation: what a new user got first)
    trecvit_conv   trecvit_plain with a convolutional stem ("early convolutions", Xiao et al. 2021)
    trecvit_narrow64  the recipe at width 128 (recurrence width = width) on 64x64 frames: ~3x the steps per CPU s
    trecvit_narrow64_conv  trecvit_narrow64 tokenized by a convolutional stem (Xiao et al. 2021)
    trecvit_narrow64_p8  trecvit_narrow64 with 8x8 patches (64 tokens per frame instead of 16: ~4x the cost per step)
    frames         the recipe's frame-averaging twin (`trecvit_tiny_frames`: no temporal blocks; its RGB-difference
                   tokens still show it x_t - x_{t-1})
    frames_single  the twin without RGB-difference tokens: one frame at a time
    frames_narrow64  the twin of trecvit_narrow64 (width 128, 64x64, RGB-difference tokens, no temporal blocks)
    frames_narrow64_p8  the twin of trecvit_narrow64_p8 (8x8 patches)
    c3d            a small 3D CNN (`vidssm.models.baselines.Conv3DClassifier`, four Conv3d stages), at 96x96
    c3d64          the 3D CNN on the 64x64 frames of the *_narrow64 variants
    late_cnn       a late-temporal model: a ResNet-18 encoder per frame (3x3 feature-map tokens), 2 RG-LRU blocks
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import yaml

from vidssm.data.real_motion import SETS, RealMotionConfig, build_real_motion, is_built
from vidssm.tasks.callbacks import read_metrics
from vidssm.tasks.classification import read_confusion
from vidssm.tasks.cli import fit_for

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "experiments" / "real_clips_tiny.yaml"
RECIPE_ARGS = yaml.safe_load(CONFIG.read_text())["model"]["init_args"]["backbone_args"]
PLAIN = {k: v for k, v in RECIPE_ARGS.items() if k not in ("rgb_diff", "temporal")}  # TRecViT's own stem and init
NARROW = {"width": 128, "num_heads": 2, "mlp_dim": 512, "rep_size": 512}


def _temporal(**fields) -> dict:
    """The recipe's `temporal` fields with `fields` changed."""
    return {**RECIPE_ARGS.get("temporal", {}), **fields}


VARIANTS: dict[str, tuple[str | dict, dict | None]] = {  # name -> (backbone, backbone_args)
    "trecvit": ("trecvit_tiny", RECIPE_ARGS),
    "trecvit_plain": ("trecvit_tiny", PLAIN),  # zero-centred pixels only: the recipe before rgb_diff / conv init
    "trecvit_no_rgbdiff": ("trecvit_tiny", {**PLAIN, "temporal": _temporal()}),
    "trecvit_griffin_conv": ("trecvit_tiny", {**PLAIN, "rgb_diff": RECIPE_ARGS["rgb_diff"]}),
    "trecvit_raw": ("trecvit_tiny", {**PLAIN, "pixel_mean": None, "pixel_std": None}),
    "trecvit_conv": ("trecvit_tiny", {**PLAIN, "stem": "conv"}),
    "trecvit_narrow64": (  # the recipe at width 128 on 64x64 frames: ~3x the steps per CPU second
        "trecvit_tiny",
        {**RECIPE_ARGS, **NARROW, "img_size": 64, "temporal": _temporal(state_multiplier=1)},
    ),
    "trecvit_narrow64_conv": (  # trecvit_narrow64 tokenized by a conv stem (Xiao et al. 2021) in place of patchify
        "trecvit_tiny",
        {**RECIPE_ARGS, **NARROW, "img_size": 64, "stem": "conv", "temporal": _temporal(state_multiplier=1)},
    ),
    "trecvit_narrow64_p8": (  # trecvit_narrow64 with 8x8 patches: 8x8 tokens per frame, finer motion
        "trecvit_tiny",
        {**RECIPE_ARGS, **NARROW, "img_size": 64, "patch_size": 8, "temporal": _temporal(state_multiplier=1)},
    ),
    "frames": ("trecvit_tiny_frames", {**RECIPE_ARGS, "temporal": "none"}),  # the twin: sees x_t and x_t - x_{t-1}
    "frames_single": ("trecvit_tiny_frames", {**PLAIN, "temporal": "none"}),  # one frame at a time, nothing else
    "frames_narrow64": (  # the twin of trecvit_narrow64: same tokens (x_t and x_t - x_{t-1}), no temporal blocks
        "trecvit_tiny_frames",
        {**RECIPE_ARGS, **NARROW, "img_size": 64, "temporal": "none"},
    ),
    "frames_narrow64_p8": (  # the twin of trecvit_narrow64_p8
        "trecvit_tiny_frames",
        {**RECIPE_ARGS, **NARROW, "img_size": 64, "patch_size": 8, "temporal": "none"},
    ),
    "c3d": ({"class_path": "vidssm.models.baselines.Conv3DClassifier", "init_args": {"num_classes": 0}}, None),
    "c3d64": ({"class_path": "vidssm.models.baselines.Conv3DClassifier", "init_args": {"num_classes": 0}}, None),
    "late_cnn": (
        "late_rglru_resnet18",
        {"img_size": 96, "embedding": "tokens", "frames_per_clip": RECIPE_ARGS["frames_per_clip"]},
    ),
}
EXTRA_ARGS: dict[str, list[str]] = {  # name -> more `vidssm fit` arguments (optimiser, data) of a variant
    "trecvit_narrow64": ["--data.init_args.img_size", "64"],
    "trecvit_narrow64_conv": ["--data.init_args.img_size", "64"],
    "trecvit_narrow64_p8": ["--data.init_args.img_size", "64"],
    "frames_narrow64": ["--data.init_args.img_size", "64"],
    "frames_narrow64_p8": ["--data.init_args.img_size", "64"],
    "c3d64": ["--data.init_args.img_size", "64"],
}

FINDINGS = "<!-- findings: written by hand, kept when the table is regenerated -->\n"


def _last(series: dict, key: str) -> float:
    return series[key][-1][1] if key in series else float("nan")


def _factor_accuracy(names: list[str], confusion: torch.Tensor) -> dict[str, float]:
    """For the motion set: accuracy of the arrow of time and of the speed alone, read off the 6-class confusion."""
    arrow = torch.tensor([n.startswith("forward") for n in names])
    speed = torch.tensor([int(n.split("_x")[1]) for n in names])
    same_arrow = arrow[:, None] == arrow[None, :]  # [true, predicted]
    same_speed = speed[:, None] == speed[None, :]
    total = confusion.sum().item()
    return {
        "arrow_top1": confusion[same_arrow].sum().item() / total,
        "speed_top1": confusion[same_speed].sum().item() / total,
    }


def run(
    set_name: str,
    variant: str,
    data: Path,
    minutes: float,
    num_classes: int,
    clock: str,
    extra: Sequence[str] = (),
    seed: int = 0,
) -> dict:
    """Trains `variant` on `set_name` for `minutes` from `seed` (model init, batch order, augmentation), tests it on
    the held-out clips; `extra`: more `vidssm fit` arguments (e.g. `--model.init_args.lr 3e-3`), after the
    variant's own. The run folder is `runs/vidssm/real_<set>_<variant>[_s<seed>]`."""
    root = data / set_name
    backbone, backbone_args = VARIANTS[variant]
    if isinstance(backbone, dict):
        backbone = {**backbone, "init_args": {**backbone["init_args"], "num_classes": num_classes}}
    args = [
        "--config",
        str(CONFIG),
        "--data.init_args.root",
        str(root),
        "--data.init_args.train_annotations",
        str(root / "train.csv"),
        "--data.init_args.val_annotations",
        str(root / "test.csv"),
        "--data.init_args.label_map_file",
        str(root / "label_map.json"),
        "--model.init_args.backbone",
        backbone if isinstance(backbone, str) else json.dumps(backbone),
        "--model.init_args.backbone_args",
        json.dumps(backbone_args),
        "--trainer.check_val_every_n_epoch",
        "1000000",  # held-out clips are scored once, by `vidssm test`, after the budget
        "--trainer.log_every_n_steps",
        "5",
        "--seed_everything",
        str(seed),
        *EXTRA_ARGS.get(variant, ()),
        *extra,
    ]
    name = f"real_{set_name}_{variant}" + (f"_s{seed}" if seed else "")
    shutil.rmtree(Path("runs") / "vidssm" / name, ignore_errors=True)  # a fresh run, never a resumed one
    run_dir, train_s = fit_for(args, name, minutes, progress_bar=False, clock=clock)
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    steps = int(ckpt["global_step"])
    series = {**read_metrics(run_dir / "metrics_fit.csv"), **read_metrics(run_dir / "metrics.csv")}
    row = dict(
        set=set_name,
        variant=variant,
        seed=seed,
        test_top1=_last(series, "test/top1"),
        steps=steps,
        s_per_step=round(train_s / max(steps, 1), 2),
        train_seconds=round(train_s),
        params_m=round(sum(v.numel() for k, v in ckpt["state_dict"].items() if "running" not in k) / 1e6, 2),
        loss_curve=[(s * train_s / max(steps, 1), v) for s, v in series.get("train/loss_step", [])],
    )
    if set_name in FACTORS:
        names, confusion = read_confusion(run_dir / "confusion_test.csv")
        row.update(FACTORS[set_name][0](names, confusion))
    return row


def _group_accuracy(names: list[str], confusion: torch.Tensor) -> dict[str, float]:
    """For the order set: top-1 over the clips of the pans (4 classes) and of the zooms (2 classes) apart."""
    correct = confusion.diagonal()
    out = {}
    for group, prefix in (("pans_top1", "pan_"), ("zooms_top1", "zoom_")):
        rows = torch.tensor([n.startswith(prefix) for n in names])
        out[group] = correct[rows].sum().item() / max(confusion[rows].sum().item(), 1)
    return out


FACTORS = {  # set -> (the confusion's breakdown, its markdown columns (key, title), what they mean)
    "motion": (
        _factor_accuracy,
        (("arrow_top1", "arrow of time"), ("speed_top1", "speed")),
        "arrow of time / speed: share of the test clips whose predicted class has the right direction (chance 50%) / "
        "the right speed (chance 33%), whatever the other factor",
    ),
    "order": (
        _group_accuracy,
        (("pans_top1", "pans"), ("zooms_top1", "zooms")),
        "pans / zooms: 6-way top-1 over the test clips of the 4 pan classes / of the 2 zoom classes (a model that "
        "calls every zoom `zoom_in_out` scores 50% on zooms)",
    ),
}


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = sorted({r["set"] for r in rows})
    fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 3.8), squeeze=False)
    for ax, set_name in zip(axes[0], sets, strict=True):
        for r in (r for r in rows if r["set"] == set_name):
            if r["loss_curve"]:
                x, y = zip(*r["loss_curve"], strict=True)
                seed = f" seed {r['seed']}" if r.get("seed") else ""
                ax.plot(x, y, label=f"{r['variant']}{seed} ({r['test_top1']:.0%} held-out)", alpha=0.85)
        chance = torch.log(torch.tensor(float(len(SETS[set_name])))).item()
        ax.axhline(chance, color="grey", ls="--", lw=1, label=f"ln {len(SETS[set_name])} (uniform)")
        ax.set(title=f"{set_name}: training loss", xlabel="training seconds", ylabel="loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _markdown(rows: list[dict], meta: dict) -> str:
    command = meta.get("command") or f"python tools/real_footage_results.py --minutes {meta['minutes']:g}"
    out = [
        "# Learning from scratch on real footage (CPU, same training budget per model)\n",
        f"`{command}` — "
        f"{meta['minutes']:g} min of {'CPU time of the training process' if meta['clock'] == 'cpu' else 'wall-clock'}"
        f" per model; {meta['threads']} torch thread(s) per training process, torch "
        f"{meta['torch']}, {meta['cpu']}; recipe `{meta['config']}`; data `vidssm data real-motion` "
        f"(test clips from the source videos {', '.join(meta['test_sources'])}, never seen in training).\n",
    ]
    for set_name in sorted({r["set"] for r in rows}):
        chance = 1 / len(SETS[set_name])
        columns = FACTORS[set_name][1] if set_name in FACTORS else ()
        out.append(f"\n## `{set_name}` ({len(SETS[set_name])} classes, chance {chance:.1%})\n")
        head = "| variant | seed | held-out top-1 |" + "".join(f" {title} |" for _, title in columns)
        out.append(head + " steps | s/step | params (M) |")
        out.append("|---|---:|---:|" + "---:|" * len(columns) + "---:|---:|---:|")
        for r in (r for r in rows if r["set"] == set_name):
            cells = f"| {r['variant']} | {r.get('seed', 0)} | {r['test_top1']:.1%} |"
            cells += "".join(f" {r[key]:.1%} |" if key in r else " |" for key, _ in columns)
            out.append(cells + f" {r['steps']} | {r['s_per_step']} | {r['params_m']} |")
        if columns:
            out.append(f"\n{FACTORS[set_name][2]}.")
        out += _seed_means([r for r in rows if r["set"] == set_name], columns)
    out.append("\n![training curves](real_footage.png)\n")
    return "\n".join(out) + "\n"


def _seed_means(rows: list[dict], columns: tuple) -> list[str]:
    """Markdown lines of mean ± std over the seeds of each variant (none when every variant has one seed)."""
    by_variant: dict[str, list[dict]] = {}
    for r in rows:
        by_variant.setdefault(r["variant"], []).append(r)
    if all(len(rs) < 2 for rs in by_variant.values()):
        return []

    def cell(rs: list[dict], key: str) -> str:
        values = [r[key] for r in rs if key in r]
        if not values:
            return ""
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.1%} ± {std:.1%}"

    head = "| variant | seeds | held-out top-1 |" + "".join(f" {title} |" for _, title in columns)
    out = ["\nMean ± std over seeds:\n", head, "|---|---:|---:|" + "---:|" * len(columns)]
    for variant, rs in by_variant.items():
        cells = "".join(f" {cell(rs, key)} |" for key, _ in columns)
        out.append(f"| {variant} | {len(rs)} | {cell(rs, 'test_top1')} |{cells}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget per model")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="budget in CPU time of the training process (fair on a shared machine) or wall-clock time",
    )
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--data", default=str(ROOT / "data" / "real_motion"), help="built by `vidssm data real-motion`")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds: one run of each variant per seed")
    parser.add_argument("--merge", action="store_true", help="add to the rows already in the output JSON")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads of the training process (1: CPU-time budgets stay fair)"
    )
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if not args.minutes > 0:
        parser.error(f"--minutes must be > 0, got {args.minutes}")
    if any(seed < 0 for seed in args.seeds):
        parser.error(f"--seeds must be >= 0, got {args.seeds}")
    torch.set_num_threads(args.threads)  # more threads spin on a shared machine and eat a CPU-time budget unused
    data = Path(args.data)
    cfg = RealMotionConfig()
    if not is_built(data, cfg):
        try:
            build_real_motion(data, cfg)
        except (FileExistsError, ValueError) as err:  # a folder that is not a real-motion build, and not empty
            parser.error(f"--data {data}: {err}")
    rows = []
    for set_name in args.sets:
        for seed in args.seeds:
            for variant in args.variants:
                rows.append(run(set_name, variant, data, args.minutes, len(SETS[set_name]), args.clock, seed=seed))
                print({k: v for k, v in rows[-1].items() if k != "loss_curve"}, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.merge and (out / "real_footage.json").is_file():  # keep the rows of other sets / variants
        done = {(r["set"], r["variant"], r["seed"]) for r in rows}
        old = json.loads((out / "real_footage.json").read_text())["results"]
        rows = [r for r in old if (r["set"], r["variant"], r.get("seed", 0)) not in done] + rows
    meta = dict(
        command=shlex.join(
            ["python", "tools/real_footage_results.py", *(sys.argv[1:] if argv is None else argv)]
        ),  # what was run, as typed
        minutes=args.minutes,
        clock=args.clock,
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        cpu=platform.processor() or platform.machine(),
        config=str(CONFIG.relative_to(ROOT)),
        test_sources=list(cfg.test_sources),
    )
    (out / "real_footage.json").write_text(json.dumps(dict(meta=meta, results=rows), indent=1) + "\n")
    _plot(rows, out / "real_footage.png")
    doc = out / "real_footage.md"
    # hand-written findings below the marker survive a re-run (they cite the numbers; re-read them after one)
    findings = doc.read_text().partition(FINDINGS)[2] if doc.is_file() else ""
    doc.write_text(_markdown(rows, meta) + (f"\n{FINDINGS}{findings}" if findings else ""))
    print(_markdown(rows, meta))


if __name__ == "__main__":
    main()
