"""Builds a Moving-MNIST video set; same as `vidssm data moving-mnist ...`.

python tools/build_moving_mnist.py temporal --out data/mmnist_temporal
python tools/build_moving_mnist.py prediction --out data/mmnist_prediction --num-train 10000
"""

from __future__ import annotations

import sys

from vidssm.data.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["moving-mnist", *sys.argv[1:]]))
