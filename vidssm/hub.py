"""Weights on disk, offline, in the Hugging Face hub layout: the public names.

`save_pretrained` / `from_pretrained` / `load_weights` live in `vidssm.models.pretrained`, the next-frame
predictor's `save_predictor` / `load_predictor` in `vidssm.models.predictor`, and the config's plain-data form in
`vidssm.models.config`; models save and load themselves through them, so this module only gathers them (the
imports run one way: `vidssm.hub` → `vidssm.models`).
"""

from __future__ import annotations

from vidssm.models.config import config_from_dict, config_to_dict
from vidssm.models.predictor import DECODER_NAME, is_predictor, load_predictor, save_predictor
from vidssm.models.pretrained import (
    CLASSIFIER_PREFIX,
    CONFIG_NAME,
    HEAD_PREFIX,
    WEIGHTS_NAME,
    architecture_of,
    from_pretrained,
    load_weights,
    save_pretrained,
)

__all__ = [
    "CLASSIFIER_PREFIX",
    "CONFIG_NAME",
    "DECODER_NAME",
    "HEAD_PREFIX",
    "WEIGHTS_NAME",
    "architecture_of",
    "config_from_dict",
    "config_to_dict",
    "from_pretrained",
    "is_predictor",
    "load_predictor",
    "load_weights",
    "save_predictor",
    "save_pretrained",
]
