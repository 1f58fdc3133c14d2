"""Re-runnable results for the README: Moving-MNIST direction classification under a fixed CPU budget.

For each variant (recurrent TRecViT-Ti, the same ViT without temporal blocks = frame averaging,
all-local-attention, hybrid) it runs `vidssm fit` for `--minutes` of wall-clock training, then
`vidssm test`, and writes `docs/results/mmnist_temporal.{json,md}` with test top-1 and chance.

    python tools/train_results.py --minutes 15            # the README's budget
    python tools/train_results.py --minutes 3 --variants recurrent frames
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
from pathlib import Path

import torch
import yaml

from vidssm.tasks.cli import fit_for

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "experiments" / "mmnist_temporal_tiny.yaml"
# the backbone overrides of the experiment's model file (one source of truth for the size)
BASE_ARGS = yaml.safe_load((ROOT / "configs" / "model" / "classification_trecvit_tiny.yaml").read_text())["init_args"][
    "backbone_args"
]
VARIANTS = {
    "recurrent": "trecvit_tiny",
    "frames": "trecvit_tiny_frames",
    "attention": "trecvit_tiny_attention",
    "hybrid": "trecvit_tiny_hybrid",
}


def _test_top1(metrics: Path) -> float:
    top1 = float("nan")
    with open(metrics, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("test/top1"):
                top1 = float(row["test/top1"])
    return top1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--data", default=str(ROOT / "data" / "mmnist_temporal"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = parser.parse_args()
    rows = []
    for variant in args.variants:
        name = f"results_{variant}"
        backbone_args = dict(BASE_ARGS)
        if variant == "hybrid":  # the registered pattern at this depth: two recurrent layers, then attention
            backbone_args["temporal"] = ["attention" if i % 3 == 2 else "rglru" for i in range(BASE_ARGS["depth"])]
        common = [
            "--config",
            str(CONFIG),
            "--data.init_args.root",
            args.data,
            "--model.init_args.backbone",
            VARIANTS[variant],
            "--model.init_args.backbone_args",
            json.dumps(backbone_args),
        ]
        run, train_s = fit_for(common, name, args.minutes, progress_bar=False)
        ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        rows.append(
            dict(
                variant=variant,
                model=VARIANTS[variant],
                test_top1=_test_top1(run / "metrics.csv"),
                steps=int(ckpt["global_step"]),
                train_seconds=round(train_s),
            )
        )
        print(rows[-1])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(
        minutes=args.minutes,
        chance=0.25,
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        cpu=platform.processor() or platform.machine(),
        config=str(CONFIG.relative_to(ROOT)),
    )
    (out / "mmnist_temporal.json").write_text(json.dumps(dict(meta=meta, results=rows), indent=2) + "\n")
    table = "| variant | model | test top-1 | steps | train s |\n|---|---|---:|---:|---:|\n" + "".join(
        f"| {r['variant']} | `{r['model']}` | {r['test_top1']:.1%} | {r['steps']} | {r['train_seconds']} |\n"
        for r in rows
    )
    (out / "mmnist_temporal.md").write_text(
        f"# Moving-MNIST direction (4 classes, chance 25%), {args.minutes:g} min of CPU training each\n\n"
        f"`python tools/train_results.py --minutes {args.minutes:g}` — {meta['threads']} threads, torch "
        f"{meta['torch']}, config `{meta['config']}`.\n\n{table}"
    )
    print(table)


if __name__ == "__main__":
    main()
