"""Benchmark live streaming on the CPU: per-frame `step` cost, its flatness over time, and the alternatives.

For `trecvit_tiny` at 224² and 112², in one run:

1. `step` latency vs the bare ViT-Ti image model (timm `vit_tiny_patch16_224`, random weights) on the same frame
   (goal ≤ 1.6×), with a breakdown of where the step spends its time (tokenizer, temporal, spatial blocks, head);
2. `step` latency, state size and process RSS at frames 10, 1,000 and 10,000 (goal: flat within ±5%, no memory
   growth). The stream is advanced between checkpoints over random frames with `step` or `prefill` chunks,
   whichever is faster here (same state either way, tested in the model tests); the state reached at each
   checkpoint is kept, and `step` from each of them is timed in interleaved rounds;
3. vs re-running the 16-frame clip model on a sliding window every frame (goal ≥ 8× cheaper), and offline
   throughput: `model(video)` frames/s on that 16-frame clip vs ViT-Ti on the same 16 frames as one image batch
   (goal: the time ratio no higher than the FLOP ratio);
4. vs a causal space-time attention model (ViT-Ti blocks whose attention sees every token of every past frame,
   a growing KV cache) at frame 512, its cache filled with 511 frames of random keys/values (goal ≥ 5× cheaper).

Writes `docs/benchmarks/stream_cpu.{json,md,png}` and prints the table.

    python tools/bench_stream.py            # default run (< 5 min on 2 cores): frame 10,000 at 112² only
    python tools/bench_stream.py --full     # also frame 10,000 at 224² (adds about 5 min)
    python tools/bench_stream.py --quick    # smoke test: few repeats, frames 10 and 100, no files unless --out

    python tools/bench_stream.py --backends # only the step backends (eager, torch.compile, ONNX Runtime) at 224²,
                                            # added to the saved report

Both models are also timed through `torch.compile` (about 1 min of compiling per size; `--no-compile` skips it),
and the FLOP ratio of step to ViT is counted: the floor the eager ratio can approach.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn

import vidssm
from vidssm.machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
MODEL = "trecvit_tiny"
VIT = "vit_tiny_patch16_224"
GOALS = {"vs_vit": 1.6, "flat_pct": 5.0, "vs_window": 8.0, "vs_kv_cache": 5.0}


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux `/proc`), after returning freed heap pages to the OS.

    Without the trim, RSS also counts memory that was freed but kept by the allocator (e.g. activations of a
    large `prefill` chunk), which is not growth.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20




def median_ms(fn, repeats: int, warmup: int = 2) -> float:
    """Robust per-call time of `fn()` in ms: the median of the faster half of `repeats` calls.

    Other jobs may share the cores; a slow call is interference, not the code, so the slower half is discarded.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return robust_ms(times)


def robust_ms(times: list[float]) -> float:
    """Median of the faster half of `times`."""
    fast = sorted(times)[: max(len(times) // 2, 1)]
    return statistics.median(fast)


def state_bytes(state) -> int:
    return sum(t.nbytes for t in torch.utils._pytree.tree_leaves(state))


class Stepper:
    """Keeps one stream's state and times `step` on fresh random frames."""

    def __init__(self, model: nn.Module, size: int) -> None:
        self.model, self.size = model, size
        self.state = model.init_state(1)
        self.frames = 0

    def step(self) -> None:
        _, self.state = self.model.step(torch.rand(1, 3, self.size, self.size), self.state)
        self.frames += 1

    def advance_to(self, frame: int, chunk: int = 1) -> None:
        """Feeds random frames until `frame` frames were seen: `prefill` chunks of `chunk` frames, the rest
        one `step` at a time. Only those two shapes ever run, so the allocator's pools (warmed by `fastest_chunk`)
        do not change with the checkpoint and RSS compares like with like."""
        while self.frames + chunk <= frame and chunk > 1:
            _, self.state = self.model.prefill(torch.rand(1, chunk, 3, self.size, self.size), self.state)
            self.frames += chunk
        while self.frames < frame:
            self.step()

    def fastest_chunk(self, chunks: tuple[int, ...] = (1, 8, 32)) -> int:
        """The chunk length (1 = `step`) that feeds frames fastest here; advances this stream while measuring."""
        cost = {}
        for chunk in chunks:
            self.advance_to(self.frames + chunk, chunk)  # warm-up
            t0 = time.perf_counter()
            self.advance_to(self.frames + chunk, chunk)
            cost[chunk] = (time.perf_counter() - t0) / chunk
        return min(cost, key=cost.get)


class CausalSpaceTimeAttention(nn.Module):
    """Baseline: ViT-Ti blocks whose attention sees all tokens of the current and every past frame (KV cache).

    Args:
        size: Frame side.
        width: Token width.
        depth: Blocks.
        num_heads: Attention heads.
        mlp_dim: MLP hidden width.
    """

    def __init__(self, size: int, width: int = 192, depth: int = 12, num_heads: int = 3, mlp_dim: int = 768) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, width // num_heads
        self.patch = nn.Conv2d(3, width, 16, 16)
        self.tokens = 1 + (size // 16) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.pos = nn.Parameter(torch.randn(1, self.tokens, width) * 0.02)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                dict(
                    norm1=nn.LayerNorm(width),
                    qkv=nn.Linear(width, 3 * width),
                    proj=nn.Linear(width, width),
                    norm2=nn.LayerNorm(width),
                    mlp=nn.Sequential(nn.Linear(width, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, width)),
                )
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)

    def random_cache(self, past_frames: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A KV cache of `past_frames` frames per block, `[1, num_heads, frames * tokens, head_dim]` each."""
        shape = (1, self.num_heads, past_frames * self.tokens, self.head_dim)
        return [(torch.randn(shape), torch.randn(shape)) for _ in self.blocks]

    def step(self, frame: torch.Tensor, cache: list) -> tuple[torch.Tensor, list]:
        """One frame `[1, 3, H, W]` attending to itself and the cache; returns the CLS token and the grown cache."""
        x = self.patch(frame).flatten(2).transpose(1, 2)  # [1, N, D]
        x = torch.cat([self.cls, x], dim=1) + self.pos  # [1, 1+N, D]
        new_cache = []
        for block, (k_past, v_past) in zip(self.blocks, cache, strict=True):
            q, k, v = block["qkv"](block["norm1"](x)).unflatten(-1, (3, self.num_heads, self.head_dim)).unbind(2)
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [1, heads, 1+N, head_dim]
            k, v = torch.cat([k_past, k], dim=2), torch.cat([v_past, v], dim=2)
            attn = nn.functional.scaled_dot_product_attention(q, k, v)  # causal in time: past frames + this one
            x = x + block["proj"](attn.transpose(1, 2).flatten(2))
            x = x + block["mlp"](block["norm2"](x))
            new_cache.append((k, v))
        return self.norm(x)[:, 0], new_cache


def breakdown(model: nn.Module, size: int, repeats: int) -> dict[str, float]:
    """Median ms per `step` spent in the tokenizer, temporal blocks, spatial blocks and the rest."""
    spent: dict[str, list[float]] = defaultdict(list)
    starts: dict[int, float] = {}
    groups = {"tokenizer": [model.tokenizer], "temporal": list(model.temporal), "spatial": list(model.spatial)}
    handles = []
    for name, modules in groups.items():
        for module in modules:

            def pre(mod: nn.Module, args: tuple) -> None:
                starts[id(mod)] = time.perf_counter()

            def post(mod: nn.Module, args: tuple, out: object, name: str = name) -> None:
                spent[name].append((time.perf_counter() - starts[id(mod)]) * 1e3)

            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    stepper = Stepper(model, size)
    stepper.step()
    spent.clear()
    totals = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        stepper.step()
        totals.append((time.perf_counter() - t0) * 1e3)
    for h in handles:
        h.remove()
    out = {name: sum(v) / repeats for name, v in spent.items()}
    out["total"] = statistics.mean(totals)
    out["other (head, state bookkeeping)"] = out["total"] - sum(out[k] for k in groups)
    return out


def count_flops(fn) -> int:
    """FLOPs of one call of `fn` (matmuls, convolutions, attention: what `FlopCounterMode` counts)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def interleaved(fns: dict, repeats: int, rounds: int = 4) -> dict[str, float]:
    """Robust ms per call of every `fns[name]()`, measured in alternating rounds so machine noise hits all alike."""
    times: dict[str, list[float]] = defaultdict(list)
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(median_ms(fn, repeats))
    return {name: statistics.median(t) for name, t in times.items()}


def offline_throughput(model: nn.Module, vit: nn.Module, clip: torch.Tensor, repeats: int) -> dict[str, float]:
    """Offline frames/s: `model(clip)` on a `[1, T, 3, H, W]` clip vs `vit` on its `T` frames as one image batch.

    Timed in interleaved rounds; `flops_ratio` is the clip model's FLOPs over the ViT's (the ratio the time
    ratio would have at equal efficiency; the goal is that the parallel scan keeps it there).
    """
    frames = clip[0]  # [T, 3, H, W]: the same frames as an image batch
    ms = interleaved({"clip": lambda: model(clip), "vit": lambda: vit(frames)}, repeats)
    flops = count_flops(lambda: model(clip)) / count_flops(lambda: vit(frames))
    n = clip.shape[1]
    return dict(
        clip_ms=ms["clip"], vit_ms=ms["vit"], clip_fps=1e3 * n / ms["clip"], vit_fps=1e3 * n / ms["vit"],
        time_ratio=ms["clip"] / ms["vit"], flops_ratio=flops,
    )  # fmt: skip


def bench_size(size: int, checkpoints: list[int], repeats: int, log, compile_: bool = True) -> dict:
    torch.manual_seed(0)
    model = vidssm.create_model(MODEL, img_size=size).eval()
    import timm

    vit = timm.create_model(VIT, pretrained=False, img_size=size, num_classes=400).eval()
    frame = torch.rand(1, 3, size, size)
    res: dict = {"size": size}
    with torch.inference_mode():
        stepper = Stepper(model, size)
        stepper.advance_to(16)
        state = stepper.state

        def one_step() -> None:
            model.step(frame, state)

        ms = interleaved({"step": one_step, "vit": lambda: vit(frame)}, repeats)
        res["step_ms"], res["vit_ms"] = ms["step"], ms["vit"]
        res["step_vs_vit"] = res["step_ms"] / res["vit_ms"]
        res["flops_step_vs_vit"] = count_flops(one_step) / count_flops(lambda: vit(frame))
        log(
            f"{size}²: step {res['step_ms']:.1f} ms, ViT-Ti {res['vit_ms']:.1f} ms ({res['step_vs_vit']:.2f}×; "
            f"{res['flops_step_vs_vit']:.2f}× the FLOPs)"
        )
        clip = torch.rand(1, 16, 3, size, size)
        if compile_:
            t0 = time.perf_counter()
            step_c, vit_c = torch.compile(model.step, dynamic=False), torch.compile(vit, dynamic=False)
            window_c = torch.compile(model, dynamic=False)
            step_c(frame, state), vit_c(frame), window_c(clip)
            ms = interleaved({"step": lambda: step_c(frame, state), "vit": lambda: vit_c(frame)}, repeats)
            window_ms = median_ms(lambda: window_c(clip), max(repeats // 4, 2), warmup=1)
            res["compiled"] = dict(
                step_ms=ms["step"], vit_ms=ms["vit"], step_vs_vit=ms["step"] / ms["vit"],
                window16_ms=window_ms, window_vs_step=window_ms / ms["step"],
                compile_s=time.perf_counter() - t0,
            )  # fmt: skip
            log(
                f"{size}²: torch.compile: step {ms['step']:.1f} ms, ViT-Ti {ms['vit']:.1f} ms "
                f"({res['compiled']['step_vs_vit']:.2f}×), 16-frame window {window_ms:.1f} ms "
                f"({res['compiled']['window_vs_step']:.1f}× step)"
            )
        res["breakdown_ms"] = breakdown(model, size, repeats)

        res["window16_ms"] = median_ms(lambda: model(clip), max(repeats // 4, 2), warmup=1)
        res["window_vs_step"] = res["window16_ms"] / res["step_ms"]
        res["offline"] = offline_throughput(model, vit, clip, max(repeats // 4, 2))
        o = res["offline"]
        log(
            f"{size}²: offline 16-frame clip {o['clip_fps']:.0f} frames/s, ViT-Ti on the 16 frames as a batch "
            f"{o['vit_fps']:.0f} frames/s ({o['time_ratio']:.2f}× the time, {o['flops_ratio']:.2f}× the FLOPs)"
        )
        log(f"{size}²: 16-frame sliding window {res['window16_ms']:.1f} ms ({res['window_vs_step']:.1f}× step)")

        stst = CausalSpaceTimeAttention(size).eval()
        cache = stst.random_cache(511)
        res["kv_cache_mib_at_512"] = sum(k.nbytes + v.nbytes for k, v in cache) / 2**20
        res["kv512_ms"] = median_ms(lambda: stst.step(frame, cache), max(repeats // 4, 2), warmup=1)
        res["kv_vs_step"] = res["kv512_ms"] / res["step_ms"]
        cache = None  # free the baseline's ~GiB before the long run
        log(f"{size}²: space-time attention at frame 512 {res['kv512_ms']:.1f} ms ({res['kv_vs_step']:.1f}× step)")

        # Pick the fastest way to feed frames (it also warms the allocator, so RSS compares like with like).
        chunk = Stepper(model, size).fastest_chunk()
        res["advance_chunk"] = chunk
        stepper = Stepper(model, size)
        res["state_kib"] = state_bytes(stepper.state) / 2**10
        saved, memory = {}, {}
        for frame_no in checkpoints:
            t0 = time.perf_counter()
            stepper.advance_to(frame_no - 1, chunk)
            saved[frame_no] = stepper.state  # states are immutable: stepping from it leaves it unchanged
            # the states kept for earlier checkpoints are extra copies, not stream memory: leave them out
            memory[frame_no] = rss_mib() - (len(saved) - 1) * state_bytes(stepper.state) / 2**20
            log(
                f"{size}²: reached frame {frame_no} in {time.perf_counter() - t0:.0f} s, RSS {memory[frame_no]:.0f} MiB"
            )
        # Time `step` at every checkpoint in interleaved rounds, so load changes on the machine hit all alike.
        times: dict[int, list[float]] = {f: [] for f in checkpoints}
        for f in checkpoints:
            model.step(frame, saved[f])  # warm-up
        for _ in range(repeats):
            for f in checkpoints:
                t1 = time.perf_counter()
                model.step(frame, saved[f])
                times[f].append((time.perf_counter() - t1) * 1e3)
        res["over_time"] = [
            {
                "frame": f,
                "step_ms": robust_ms(times[f]),
                "state_kib": state_bytes(saved[f]) / 2**10,
                "rss_mib": memory[f],
            }
            for f in checkpoints
        ]
        for e in res["over_time"]:
            log(f"{size}²: frame {e['frame']}: step {e['step_ms']:.1f} ms, state {e['state_kib']:.0f} KiB")
        lat = [e["step_ms"] for e in res["over_time"]]
        res["latency_spread_pct"] = 100 * (max(lat) - min(lat)) / min(lat)
        res["rss_growth_mib"] = res["over_time"][-1]["rss_mib"] - res["over_time"][0]["rss_mib"]
    return res


def bench_backends(size: int, repeats: int, rounds: int, log) -> dict:
    """Step cost of every streaming backend (`vidssm stream --backend ...`) in one run, interleaved rounds.

    Each backend is built as `vidssm.stream.selection.select_backend` builds it (ONNX Runtime: the exported step
    graph with `fast_session_options`). Two clocks: wall ms per frame with the torch / ONNX Runtime threads set
    here, and CPU ms of the calling thread with one thread (ONNX Runtime then runs every op on the caller), which
    other jobs on a shared machine barely disturb.
    """
    import tempfile

    import numpy as np

    from vidssm.export.onnx_runtime import fast_session_options
    from vidssm.stream.backends import OnnxBackend, TorchBackend
    from vidssm.stream.selection import _try_compiled, _try_onnx, export_step_cached, probe

    torch.manual_seed(0)
    model = vidssm.create_model(MODEL, img_size=size).eval()
    eager = TorchBackend(model)
    cache = Path(tempfile.mkdtemp(prefix="bench_stream_"))
    t0 = time.perf_counter()
    onnx = _try_onnx(model, eager, None, None, cache)
    export_s = time.perf_counter() - t0
    onnx1 = OnnxBackend(export_step_cached(model, cache)[0], options=fast_session_options(1))  # cache hit
    t0 = time.perf_counter()
    compiled = _try_compiled(model, eager, None)
    compile_s = time.perf_counter() - t0
    res = {"size": size, "export_s": export_s, "compile_s": compile_s, "threads": torch.get_num_threads()}
    backends = {"eager": eager, "compiled": compiled, "onnxruntime": onnx}
    res["probe_ok"] = {k: probe(eager, b) is None for k, b in backends.items()}
    frame = torch.rand(1, 3, size, size)
    states = {k: b.init_state() for k, b in backends.items()}
    warm = [torch.rand(1, 3, size, size) for _ in range(3)]  # the same frames for every backend
    for k, b in backends.items():
        for f in warm:
            _, states[k] = b.step(f, states[k])
    logits = {k: b.step(frame, states[k])[0] for k, b in backends.items()}
    res["max_logit_diff_vs_eager"] = {k: float(np.abs(v - logits["eager"]).max()) for k, v in logits.items()}
    wall = interleaved({k: (lambda b=b, k=k: b.step(frame, states[k])) for k, b in backends.items()}, repeats, rounds)
    res["wall_ms"] = wall
    log(f"{size}²: wall ms/frame ({torch.get_num_threads()} threads): {wall}")
    # CPU time of this thread, one thread everywhere
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    single = {"eager": eager, "compiled": compiled, "onnxruntime": onnx1}
    st1 = {k: states["onnxruntime" if k == "onnxruntime" else k] for k in single}
    cpu: dict[str, list[float]] = defaultdict(list)
    for _ in range(rounds):
        for k, b in single.items():
            b.step(frame, st1[k])
            times = []
            for _ in range(repeats):
                c0 = time.thread_time()
                b.step(frame, st1[k])
                times.append((time.thread_time() - c0) * 1e3)
            cpu[k].append(statistics.median(times))
    torch.set_num_threads(threads)
    res["cpu_ms_1thread"] = {k: statistics.median(v) for k, v in cpu.items()}
    log(f"{size}²: thread CPU ms/frame (1 thread): {res['cpu_ms_1thread']}")
    return res


def backends_markdown(b: dict) -> list[str]:
    """The backend table of `bench_backends`."""
    w, c = b["wall_ms"], b["cpu_ms_1thread"]
    lines = [
        "",
        f"## Step backends ({b['size']}², `tools/bench_stream.py --backends`)",
        "",
        "What `vidssm stream --backend auto|onnx|compiled|eager` runs, measured in one run with interleaved rounds: "
        f"wall ms per frame with {b['threads']} threads, and CPU ms of the calling thread with 1 thread (robust on "
        "a shared machine). Ratios are eager / backend (higher is faster). "
        f"ONNX export took {b['export_s']:.0f} s (once per model and machine, then cached), torch.compile "
        f"{b['compile_s']:.0f} s.",
        "",
        "| backend | wall ms | eager / backend (wall) | CPU ms, 1 thread | eager / backend (CPU) "
        "| max abs(logit − eager) | probe matches eager |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for k in ("eager", "compiled", "onnxruntime"):
        lines.append(
            f"| {k} | {w[k]:.1f} | {w['eager'] / w[k]:.2f} | {c[k]:.1f} | {c['eager'] / c[k]:.2f} | "
            + (f"{b['max_logit_diff_vs_eager'][k]:.1e} | " if "max_logit_diff_vs_eager" in b else "n/a | ")
            + f"{'yes' if b['probe_ok'][k] else 'no'} |"
        )
    return lines


def verdict(value: float, goal: float, higher_is_better: bool) -> str:
    ok = value >= goal if higher_is_better else value <= goal
    return "met" if ok else "**not met**"


def markdown(report: dict) -> str:
    env = report["env"]
    lines = [
        "# Streaming CPU benchmark",
        "",
        f"`{MODEL}` (random weights) on {env['cpu']}, {env['threads']} torch threads, torch {env['torch']}; "
        "ms per frame (median of the faster half of the calls), batch 1. "
        f"Generated by `tools/bench_stream.py` in {report['seconds']:.0f} s. "
        "Other jobs may share this machine: compare ratios measured in the same run.",
        "",
        "| frame size | step ms | ViT-Ti ms | step / ViT (goal ≤ 1.6) | 16-frame window ms | window / step (goal ≥ 8) "
        "| space-time attn @512 ms | attn / step (goal ≥ 5) | state KiB | KV cache @512 MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["sizes"]:
        lines.append(
            f"| {r['size']}² | {r['step_ms']:.1f} | {r['vit_ms']:.1f} | {r['step_vs_vit']:.2f} "
            f"({verdict(r['step_vs_vit'], GOALS['vs_vit'], False)}) | {r['window16_ms']:.1f} | "
            f"{r['window_vs_step']:.1f} ({verdict(r['window_vs_step'], GOALS['vs_window'], True)}) | "
            f"{r['kv512_ms']:.1f} | {r['kv_vs_step']:.1f} ({verdict(r['kv_vs_step'], GOALS['vs_kv_cache'], True)}) | "
            f"{r['state_kib']:.0f} | {r['kv_cache_mib_at_512']:.0f} |"
        )
    if all("compiled" in r for r in report["sizes"]):
        lines += [
            "",
            "The step's floor and a compiled step. `FLOPs step / ViT` counts matmul, convolution and attention FLOPs "
            "(`torch.utils.flop_counter`): at equal efficiency the step cannot beat this ratio. Each RG-LRU block "
            "(width 2D: two D→2D input maps, two block-diagonal gates, a 2D→D output) costs about 0.6 of a ViT block. "
            "The compiled columns run every model (step, ViT-Ti, the 16-frame window model) through `torch.compile` "
            "(inductor), as `vidssm stream --compile` does.",
            "",
            "| frame size | FLOPs step / ViT | eager step / ViT | compiled step ms | compiled ViT-Ti ms "
            "| compiled step / ViT (goal ≤ 1.6) | compiled fps | compiled 16-frame window ms "
            "| compiled window / step (goal ≥ 8) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in report["sizes"]:
            c = r["compiled"]
            lines.append(
                f"| {r['size']}² | {r['flops_step_vs_vit']:.2f} | {r['step_vs_vit']:.2f} | {c['step_ms']:.1f} | "
                f"{c['vit_ms']:.1f} | {c['step_vs_vit']:.2f} ({verdict(c['step_vs_vit'], GOALS['vs_vit'], False)}) | "
                f"{1e3 / c['step_ms']:.0f} | {c['window16_ms']:.1f} | {c['window_vs_step']:.1f} "
                f"({verdict(c['window_vs_step'], GOALS['vs_window'], True)}) |"
            )
    if all("offline" in r for r in report["sizes"]):
        lines += [
            "",
            "Offline throughput: `model(video)` on one 16-frame clip (the parallel scan over time) against ViT-Ti on "
            "the same 16 frames as an image batch, timed in interleaved rounds (goal: time ratio ≤ FLOP ratio)."
            + (
                f" Measured in a separate run (`--offline-only`, {report['offline_run']['threads']} torch thread(s), "
                f"{report['offline_run']['seconds']:.0f} s)."
                if "offline_run" in report
                else ""
            ),
            "",
            "| frame size | clip frames/s | ViT-Ti frames/s | time clip / ViT | FLOPs clip / ViT | goal |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for r in report["sizes"]:
            o = r["offline"]
            lines.append(
                f"| {r['size']}² | {o['clip_fps']:.1f} | {o['vit_fps']:.1f} | {o['time_ratio']:.2f} | "
                f"{o['flops_ratio']:.2f} | {verdict(o['time_ratio'], o['flops_ratio'], False)} |"
            )
    lines += [
        "",
        "Over a long stream (goal: latency flat within ±5%, no memory growth):",
        "",
        "| frame size | frame | step ms | state KiB | RSS MiB (excl. kept checkpoint copies) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in report["sizes"]:
        for e in r["over_time"]:
            lines.append(
                f"| {r['size']}² | {e['frame']:,} | {e['step_ms']:.1f} | {e['state_kib']:.0f} | {e['rss_mib']:.0f} |"
            )
    lines += [""]
    for r in report["sizes"]:
        lines.append(
            f"- {r['size']}²: latency spread {r['latency_spread_pct']:.1f}% "
            f"({verdict(r['latency_spread_pct'], GOALS['flat_pct'], False)}), RSS growth "
            f"{r['rss_growth_mib']:+.1f} MiB from frame {r['over_time'][0]['frame']} to "
            f"{r['over_time'][-1]['frame']:,}; state size constant."
        )
    lines += ["", "Where a step spends its time (ms per frame, forward hooks around each block):", ""]
    first = report["sizes"][0]["breakdown_ms"]
    lines += ["| " + " | ".join(first) + " |", "|" + "---:|" * len(first)]
    for r in report["sizes"]:
        lines.append("| " + " | ".join(f"{v:.1f}" for v in r["breakdown_ms"].values()) + f" |  ({r['size']}²)")
    lines += [
        "",
        "Frames between checkpoints are fed with `step` or `prefill` chunks, whichever is faster (same state); "
        "each latency is `step` from the state reached at that frame, timed in interleaved rounds. "
        "The space-time attention baseline's cache holds random keys/values of 511 frames "
        "(the cost of attending does not depend on their values).",
        "",
    ]
    if "backends" in report:
        lines += backends_markdown(report["backends"]) + [""]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for r in report["sizes"]:
        frames = [e["frame"] for e in r["over_time"]]
        line = ax1.plot(frames, [e["step_ms"] for e in r["over_time"]], "o-", label=f"TRecViT-Ti step {r['size']}²")
        ax1.axhline(r["vit_ms"], color=line[0].get_color(), ls="--", lw=1, label=f"ViT-Ti image {r['size']}²")
    ax1.set(xscale="log", xlabel="frame", ylabel="ms per frame", title="Per-frame latency over a stream")
    ax1.set_ylim(bottom=0)
    ax1.legend(fontsize=8)
    names = ["step", "ViT-Ti", "16-frame window", "space-time attn @512"]
    keys = ["step_ms", "vit_ms", "window16_ms", "kv512_ms"]
    width = 0.8 / len(report["sizes"])
    for i, r in enumerate(report["sizes"]):
        ax2.bar([j + i * width for j in range(len(keys))], [r[k] for k in keys], width, label=f"{r['size']}²")
    ax2.set_xticks([j + width * (len(report["sizes"]) - 1) / 2 for j in range(len(keys))], names, fontsize=8)
    ax2.set(yscale="log", ylabel="ms per frame", title="Cost of one new frame")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 112])
    parser.add_argument("--full", action="store_true", help="frame 10,000 at every size (slow at 224²)")
    parser.add_argument("--quick", action="store_true", help="smoke test: few repeats, frames 10 and 100")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default docs/benchmarks)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile comparison")
    parser.add_argument(
        "--offline-only", action="store_true", help="measure only the offline throughput row, into the saved report"
    )
    parser.add_argument(
        "--backends", action="store_true", help="measure only the step backends at 224², into the saved report"
    )
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (--backends)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 12)
    out = args.out if args.out is not None else (None if args.quick else ROOT / "docs" / "benchmarks")
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {msg}", flush=True)

    if args.backends:  # add the backend table to an earlier run's report without re-running the rest
        report = json.loads((ROOT / "docs" / "benchmarks" / "stream_cpu.json").read_text())
        report["backends"] = bench_backends(args.sizes[0], repeats, args.rounds, log)
        report["backends"]["seconds"] = time.perf_counter() - start
        text = markdown(report)
        print("\n".join(backends_markdown(report["backends"])))
        if out is not None:
            (out / "stream_cpu.json").write_text(json.dumps(report, indent=2) + "\n")
            (out / "stream_cpu.md").write_text(text)
        return 0
    if args.offline_only:  # add the offline row to an earlier run's report without re-running the rest
        report = json.loads((ROOT / "docs" / "benchmarks" / "stream_cpu.json").read_text())
        for res in report["sizes"]:
            torch.manual_seed(0)
            import timm

            size = res["size"]
            model = vidssm.create_model(MODEL, img_size=size).eval()
            vit = timm.create_model(VIT, pretrained=False, img_size=size, num_classes=400).eval()
            with torch.inference_mode():
                res["offline"] = offline_throughput(model, vit, torch.rand(1, 16, 3, size, size), repeats)
            log(f"{size}²: offline {res['offline']}")
        report["offline_run"] = dict(seconds=time.perf_counter() - start, threads=torch.get_num_threads())
        text = markdown(report)
        print(text)
        if out is not None:
            (out / "stream_cpu.json").write_text(json.dumps(report, indent=2) + "\n")
            (out / "stream_cpu.md").write_text(text)
        return 0
    sizes = []
    for size in args.sizes:
        if args.quick:
            checkpoints = [10, 100]
        elif args.full or size <= 112:
            checkpoints = [10, 1_000, 10_000]
        else:
            checkpoints = [10, 1_000]
        sizes.append(bench_size(size, checkpoints, repeats, log, compile_=not (args.no_compile or args.quick)))
    report = {
        "env": {
            "cpu": cpu_name(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": sys.version.split()[0],
        },
        "model": MODEL,
        "baseline": VIT,
        "goals": GOALS,
        "seconds": time.perf_counter() - start,
        "sizes": sizes,
    }
    text = markdown(report)
    print(text)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "stream_cpu.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "stream_cpu.md").write_text(text)
        plot(report, out / "stream_cpu.png")
        print(f"wrote {out / 'stream_cpu.json'}, stream_cpu.md, stream_cpu.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
