"""`vidssm fit|validate|test|predict --config configs/...yaml`: LightningCLI over the vidssm tasks.

Any `VideoTask` subclass (`model.class_path`) and any `LightningDataModule` (`data.class_path`);
the data module's `num_classes` is linked into the task. Defaults added to every run: CSV and
TensorBoard loggers, a Rich progress bar, checkpoints (`last.ckpt` plus every
`checkpoint_every_n_steps`), exact-resume RNG state, and the end-of-fit report.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import time
import traceback
import warnings
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from vidssm.data.datamodule import BadVideoReport

from .base import VideoTask
from .callbacks import (
    CPUTimeBudget,
    FinalCheckpoint,
    KeepMetricsOnResume,
    ProgressBar,
    RNGState,
    TrainingReport,
    UniformPredictionWarning,
)

BACKBONE_ARGS_HELP = (
    "To change one backbone field on top of a --config, use the dotted form, which merges into the config's "
    "backbone_args: --model.init_args.backbone_args.depth 2 (nested: --model.init_args.backbone_args.temporal "
    '\'{"kind": "lru"}\'). A whole --model.init_args.backbone_args \'{"depth": 2}\' REPLACES the config\'s '
    "backbone_args dict (losing e.g. a recipe's pixel_mean), as LightningCLI does for any dict argument."
)


DEFAULT_SAVE_DIR = "runs"  # runs/vidssm/<run> (CSV logs, checkpoints, pretrained/), runs/tensorboard; moved by
# --trainer.default_root_dir DIR to DIR/vidssm/<run>, DIR/tensorboard


class ConstructionError(Exception):
    """Building the model, data or trainer from the config failed; the message is the root cause's."""


def root_cause(err: BaseException) -> BaseException:
    """The innermost exception of `err`'s chain (`__cause__`, else `__context__`)."""
    seen = {id(err)}
    while (inner := err.__cause__ or err.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        err = inner
    return err


def _message(err: BaseException) -> str:
    text = err.args[0] if isinstance(err, KeyError) and err.args and isinstance(err.args[0], str) else str(err)
    return f"{type(err).__name__}: {text}"


MISSING_HINTS = {  # jsonargparse's "the following arguments are required: <name>" -> what to type
    "root": "give the dataset folder on the command line: --data.init_args.root DIR (recipes leave it out; a CSV "
    "set also needs --data.init_args.train_annotations / val_annotations FILE)",
}


class HintingParser(LightningArgumentParser):
    """`LightningArgumentParser` whose argument errors end with what to type for a missing required argument
    (`MISSING_HINTS`), e.g. the data root a recipe config leaves to the command line."""

    def error(self, message: str, ex: Exception | None = None):
        hints = [  # once, by the parser that prints (nested parsers raise into its message)
            hint
            for name, hint in MISSING_HINTS.items()
            if f"arguments are required: {name}" in message and self.exit_on_error and hint not in message
        ]
        return super().error(message + "".join(f"\nhint: {hint}" for hint in hints), ex)


class VidssmCLI(LightningCLI):
    """LightningCLI with vidssm's links and default callbacks; an error while building the classes from the config
    is re-raised as `ConstructionError` naming its root cause (jsonargparse buries it in a union traceback)."""

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except Exception as err:
            root = root_cause(err)
            if root is err:
                raise
            raise ConstructionError(_message(root)) from err

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--checkpoint_every_n_steps",
            type=int,
            default=100,
            help="save a checkpoint every N optimiser steps (and last.ckpt)",
        )
        parser.add_argument(
            "--run_name",
            type=str | None,
            default=None,
            help="fixed run folder (runs/vidssm/RUN_NAME), so `--ckpt_path last` finds the run's last.ckpt",
        )
        parser.add_argument(
            "--cpu_time_budget",
            type=float | None,
            default=None,
            help="stop after this many CPU seconds of the training process (a fair budget on a shared machine); "
            "the warmup + cosine schedule follows it",
        )
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.epilog = BACKBONE_ARGS_HELP

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        every = cfg.get("checkpoint_every_n_steps", 100)
        run_name = cfg.get("run_name")
        loggers = cfg.get("trainer", {}).get("logger")
        root_dir = cfg.get("trainer", {}).get("default_root_dir")
        if root_dir and isinstance(loggers, list):  # vidssm's default loggers write under runs/ unless told otherwise
            for logger in loggers:
                if logger.get("init_args", {}).get("save_dir") == DEFAULT_SAVE_DIR:
                    logger["init_args"]["save_dir"] = str(root_dir)
        if self.subcommand in ("test", "validate", "predict"):
            _warn_evaluation_inputs(self.subcommand, cfg)
        self._earlier_runs: list[Path] = []  # moved aside when a fresh fit starts (`before_fit`)
        resumed_rows: list[dict[str, str]] = []
        if run_name and isinstance(loggers, list):
            for logger in loggers:
                if "version" in logger.get("init_args", {}):
                    logger["init_args"]["version"] = run_name
            folders = _run_folders(loggers, run_name)
            if self.subcommand != "fit":  # test / validate / predict log into the fit's folder
                for folder in folders:
                    _keep_fit_logs(folder)
                _quiet_log_dir_warning()
            elif cfg.get("ckpt_path"):  # a resume: the CSV logger deletes metrics.csv when the run starts
                resumed_rows = [row for folder in folders for row in _fit_rows(folder)]
                _quiet_log_dir_warning()
            else:  # moved only once the new run starts: a config that fails to build leaves the earlier run
                self._earlier_runs = folders
        self._default_callbacks = [
            ModelCheckpoint(
                filename="step{step:06d}",
                every_n_train_steps=every,
                save_last=True,
                save_top_k=-1,
                auto_insert_metric_name=False,
                # A fit rerun into the same --run_name folder replaces its checkpoints: last.ckpt is always the
                # newest run's (with the version counter it stayed the old run's, the new one going to last-v1.ckpt).
                enable_version_counter=False,
            ),
            RNGState(),
            TrainingReport(),
            BadVideoReport(),
            UniformPredictionWarning(),
            FinalCheckpoint(),
        ]
        if cfg.get("cpu_time_budget") is not None:
            budget = cfg["cpu_time_budget"]
            if not budget > 0:  # a clean argument error, not a traceback from the callback
                self.parser.error(f"--cpu_time_budget must be a positive number of CPU seconds, got {budget}")
            self._default_callbacks.append(CPUTimeBudget(budget))
        if resumed_rows:
            self._default_callbacks.append(KeepMetricsOnResume(resumed_rows))

    def before_fit(self) -> None:
        if os.environ.get("LOCAL_RANK", "0") == "0":  # DDP workers re-run the command later: rank 0 moves once
            for folder in self._earlier_runs:
                _move_aside(folder)
        self._say_run_folder("checkpoints/, metrics.csv, and pretrained/ at the end")

    def before_test(self) -> None:
        self._say_run_folder("metrics.csv and the test outputs")

    def _say_run_folder(self, what: str) -> None:
        """Prints where this run writes (the first logger's folder), once, on rank 0."""
        log_dir = self.trainer.log_dir
        if log_dir is not None and self.trainer.is_global_zero:
            print(f"run folder: {log_dir} ({what})", flush=True)

    def _instantiate_trainer(self, config: dict, callbacks: list) -> L.Trainer:
        extra = list(self._default_callbacks)
        if config.get("enable_progress_bar") is not False:
            extra.append(ProgressBar())
        return super()._instantiate_trainer(config, [*callbacks, *extra])


def _warn_evaluation_inputs(subcommand: str, cfg) -> None:
    """`vidssm test` (validate, predict) without `--ckpt_path` scores the model as its config builds it (random
    weights, or `init_from`'s), and without `--run_name` writes into a new `version_N` folder: both are said."""
    init_args = (cfg.get("model") or {}).get("init_args") or {}
    if not cfg.get("ckpt_path") and not init_args.get("init_from"):
        warnings.warn(
            f"vidssm {subcommand} without --ckpt_path scores the model as configured, with untrained weights; pass "
            "--ckpt_path runs/vidssm/<run>/checkpoints/last.ckpt (or --model.init_args.init_from) to score a "
            "trained model",
            UserWarning,
            stacklevel=3,
        )
    if not cfg.get("run_name"):
        warnings.warn(
            f"vidssm {subcommand} without --run_name writes its metrics into a new runs/vidssm/version_N folder; "
            "pass the fit's --run_name to keep them next to the trained run",
            UserWarning,
            stacklevel=3,
        )


def _run_folders(loggers: list, run_name: str) -> list[Path]:
    """`<save_dir>/<name>/<run_name>` of each logger that writes into a `--run_name` folder (CSV: logs, checkpoints,
    `pretrained/`; TensorBoard: event files)."""
    folders = []
    for logger in loggers:
        args = logger.get("init_args", {})
        if args.get("version") == run_name:
            folders.append(Path(args.get("save_dir") or ".") / (args.get("name") or "lightning_logs") / run_name)
    return folders


def _metrics_rows(folder: Path) -> list[dict[str, str]]:
    """The rows of `folder`'s `metrics.csv` (none if it has none)."""
    if not (folder / "metrics.csv").is_file():
        return []
    with open(folder / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _fit_rows(folder: Path) -> list[dict[str, str]]:
    """The training rows of `folder`: its `metrics.csv`, or, when a `vidssm test` into the folder has since replaced
    that file with its own metrics (`_keep_fit_logs`), the fit's rows it kept in `metrics_fit.csv`."""
    rows = _metrics_rows(folder)
    if any(key.startswith("train/") for row in rows[:1] for key in row) or not (folder / "metrics_fit.csv").is_file():
        return rows
    with open(folder / "metrics_fit.csv", newline="") as f:
        return list(csv.DictReader(f))


def _quiet_log_dir_warning() -> None:
    """Lightning's CSV logger warns that the "previous log files in this directory will be deleted" when it logs
    into an existing run folder; vidssm keeps them (`_keep_fit_logs`, `KeepMetricsOnResume`), so the warning would
    mislead."""
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")


def _keep_fit_logs(folder: Path) -> None:
    """Before `test` / `validate` / `predict` log into a fit's `--run_name` folder (their CSV logger rewrites
    `metrics.csv`, and the saved config replaces `config.yaml`), the fit's are copied to `metrics_fit.csv` and
    `config_fit.yaml`: only when `metrics.csv` still holds training rows (`train/*` columns), so a second test keeps
    them."""
    metrics = folder / "metrics.csv"
    if not metrics.is_file():
        return
    with open(metrics) as f:
        header = f.readline().strip().split(",")
    if not any(name.startswith("train/") for name in header):
        return
    shutil.copyfile(metrics, folder / "metrics_fit.csv")
    if (folder / "config.yaml").is_file():
        shutil.copyfile(folder / "config.yaml", folder / "config_fit.yaml")


def _move_aside(folder: Path) -> None:
    """A fresh `fit` into a `--run_name` folder that holds an earlier run moves that run to `<folder>.<time>` when the
    new run starts: the new run's folder then holds only its own checkpoints, export and event files (a shorter
    rerun used to leave the earlier run's later `stepNNNNNN.ckpt` files next to its own), and nothing is deleted
    (a folder holding only empty folders, what a run that failed to start leaves, is removed instead of moved).
    `--ckpt_path` (resume) keeps the folder."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if not any(path.is_file() or path.is_symlink() for path in folder.rglob("*")):  # empty folders of a failed start
        shutil.rmtree(folder)
        return
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = folder.with_name(f"{folder.name}.{stamp}")
    n = 1
    while dest.exists():
        dest, n = folder.with_name(f"{folder.name}.{stamp}-{n}"), n + 1
    folder.rename(dest)
    warnings.warn(
        f"{folder} held an earlier run: moved to {dest} (nothing deleted). To continue that run instead, move it "
        f"back (mv {dest} {folder}) and pass --ckpt_path last; delete old run folders when you no longer need them.",
        stacklevel=2,
    )


def train_main(argv: list[str]) -> int:
    """Runs LightningCLI with `argv` (starting with the sub-command).

    Raises:
        SystemExit: Bad arguments (jsonargparse), or building the model / data / trainer failed: the traceback is
            printed, then the root cause as the last line, `error: <type>: <message>` (status 1).
    """
    # From the command line, let LightningCLI read sys.argv itself: DDP launches its workers by re-running
    # sys.argv, which therefore must stay untouched (and passing a copy as `args` only triggers a warning).
    args = None if list(argv) == sys.argv[1:] else list(argv)
    try:
        _run_cli(args)
    except ConstructionError as err:
        traceback.print_exception(err.__cause__, file=sys.stderr)  # the whole story, then the cause on one line
        raise SystemExit(f"error: {err}") from None
    return 0


def _run_cli(args: list[str] | None) -> None:
    VidssmCLI(
        VideoTask,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        parser_class=HintingParser,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={
            "logger": [
                {
                    "class_path": "lightning.pytorch.loggers.CSVLogger",
                    "init_args": {"save_dir": DEFAULT_SAVE_DIR, "name": "vidssm"},
                },
                {
                    "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                    "init_args": {"save_dir": DEFAULT_SAVE_DIR, "name": "tensorboard"},
                },
            ],
        },
    )


def _root_dir(args: list[str]) -> Path:
    """Where the runs of `args` go: `--trainer.default_root_dir DIR` (either form), else `runs`."""
    root = DEFAULT_SAVE_DIR
    for i, arg in enumerate(args):
        if arg == "--trainer.default_root_dir" and i + 1 < len(args):
            root = args[i + 1]
        elif arg.startswith("--trainer.default_root_dir="):
            root = arg.split("=", 1)[1]
    return Path(root)


def fit_for(
    args: list[str],
    run_name: str,
    minutes: float,
    progress_bar: bool = True,
    steps: int | None = None,
    clock: str = "wall",
) -> tuple[Path, float]:
    """`vidssm fit` for `minutes` of training, then `vidssm test` of its `last.ckpt`.

    Args:
        args: Config arguments shared by both runs (e.g. `["--config", "configs/experiments/x.yaml"]`).
        run_name: The run folder `runs/vidssm/<run_name>` (relative to the working directory).
        minutes: Training time budget; the warmup + cosine schedule follows the time spent.
        progress_bar: Show Lightning's progress bar.
        steps: Also stop after this many optimiser steps, which then sets the length of the schedule.
        clock: `"wall"` (`--trainer.max_time`) or `"cpu"` (CPU time of the training process, `--cpu_time_budget`:
            fair between runs when other work shares the machine).

    Returns:
        The run folder (`runs/vidssm/<run_name>`, or under `--trainer.default_root_dir` if `args` sets it: logs,
        checkpoints, `pretrained/`, `metrics.csv` with the test metrics, `metrics_fit.csv` and `config_fit.yaml`
        with the training ones) and the wall-clock seconds the fit took.

    Raises:
        ValueError: Unknown `clock`.
    """
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    seconds = int(minutes * 60)
    common = [*args, "--run_name", run_name, "--trainer.enable_progress_bar", str(progress_bar).lower()]
    if clock == "wall":
        budget = ["--trainer.max_time", f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"]
    else:
        # a config's wall-clock `max_time` would cut a CPU-time budget short on a busy machine
        budget = ["--cpu_time_budget", str(seconds), "--trainer.max_time", "null"]
    limit = ["--trainer.max_steps", str(steps)] if steps else ["--trainer.max_epochs", "-1"]
    start = time.time()
    train_main(["fit", *common, *budget, *limit])
    fit_seconds = time.time() - start
    run = _root_dir(args) / "vidssm" / run_name
    train_main(["test", *common, "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    return run, fit_seconds
