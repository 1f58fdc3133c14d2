"""Optimiser groups and the warmup + cosine schedule."""

import math

import pytest
import torch

import vidssm
from vidssm.tasks.optim import build_optimizer, param_groups, warmup_cosine


def test_groups_follow_the_reference_recipes():
    model = vidssm.create_model("trecvit_debug_hybrid", temporal=("rglru", "lru", "attention"))
    groups = {g["name"]: g for g in param_groups(model, lr=1e-3, weight_decay=0.1, recurrence_lr_factor=0.5)}
    names = {id(p): n for n, p in model.named_parameters()}
    recurrence = {names[id(p)] for p in groups["recurrence"]["params"]}
    assert {n.rsplit(".", 1)[-1] for n in recurrence} >= {"a_param", "nu_log", "theta_log", "gamma_log", "w", "b"}
    assert all("conv_1d" in n or n.endswith(("a_param", "_log")) for n in recurrence)
    assert groups["recurrence"]["weight_decay"] == 0 and groups["recurrence"]["lr"] == pytest.approx(5e-4)
    no_decay = {names[id(p)] for p in groups["no_decay"]["params"]}
    assert "tokenizer.pos_embed" in no_decay and "tokenizer.cls_token" in no_decay and "norm.weight" in no_decay
    assert all(p.ndim >= 2 for p in groups["decay"]["params"]) and groups["decay"]["weight_decay"] == 0.1
    counted = sum(len(g["params"]) for g in groups.values())
    assert counted == len(list(model.parameters()))  # every parameter in exactly one group


def test_directly_parametrised_lru_eigenvalues_are_recurrence_parameters():
    model = vidssm.create_model("trecvit_debug_lru", temporal={"exp_param": False})
    groups = {g["name"]: g for g in param_groups(model, lr=1e-3, weight_decay=0.1)}
    names = {id(p): n for n, p in model.named_parameters()}
    recurrence = {names[id(p)].rsplit(".", 1)[-1] for p in groups["recurrence"]["params"]}
    assert {"lambda_re", "lambda_im", "gamma_log"} <= recurrence and "nu_log" not in recurrence


def test_warmup_then_cosine():
    f = warmup_cosine(total_steps=110, warmup_steps=10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(60) == pytest.approx(0.5) and f(110) == pytest.approx(0.0)
    assert all(f(s) >= f(s + 1) for s in range(10, 110))
    with pytest.raises(ValueError, match="total_steps"):
        warmup_cosine(0, 0)


def test_build_optimizer_steps_the_schedule():
    model = torch.nn.Linear(3, 2)
    opt, sched = build_optimizer(model, total_steps=4, lr=0.1, warmup_steps=0)
    lrs = []
    for _ in range(4):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12) and lrs[0] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi / 4)))
