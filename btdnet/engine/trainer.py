"""A short accelerate training loop shared by the referring and the closed-set tasks.

What it does, in order: build the task's model and data, prepare them with accelerate (one
CPU, one GPU, N GPUs or N machines alike), train with gradient accumulation and clipping under
the configured mixed precision, evaluate every ``eval_every`` epochs (every sample counted once
through ``gather_for_metrics`` inside the task), write ``metrics.jsonl`` and tracker logs on
the main process, and save an atomic checkpoint per epoch (``checkpoints/last``,
``checkpoints/best``). ``resume`` continues from a checkpoint with the model, optimizer,
scheduler, data order and RNG states it held, so an interrupted run ends where an
uninterrupted one would. A non-finite loss, non-finite gradients (outside fp16 loss scaling,
which skips such steps itself) or non-finite weights stop the run before anything is saved, so
``last``/``best`` only ever hold finite weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from btdnet.engine import checkpoints as ckpt
from btdnet.engine.accelerator import make_accelerator, resolve_mixed_precision
from btdnet.engine.config import ConfigError, save_config
from btdnet.engine.metrics_log import MetricsLog, flatten_numbers
from btdnet.engine.modes import eval_mode
from btdnet.engine.optimizer import OPTIMIZERS, build_optimizer
from btdnet.engine.phase_timer import PhaseTimer
from btdnet.engine.sampler import EpochShuffleSampler
from btdnet.engine.schedule import SCHEDULES, build_scheduler
from btdnet.engine.sections import build_section, check_choice, refuse_unknown_keys
from btdnet.engine.task import TrainingTask
from btdnet.precision import MIXED_PRECISION_CHOICES

RUN_KEYS = ("output_dir", "seed", "train")  # top-level keys of every config; tasks add theirs


@dataclass(frozen=True)
class TrainSummary:
    """What :meth:`Trainer.fit` returns: plain numbers about the run (no live objects)."""

    epochs_done: int
    global_step: int
    stopped_early: bool  # stop_after_steps reached
    best_metric: str
    best_value: float | None
    last_eval: dict[str, dict[str, Any]]  # {split: metrics} of the last evaluation
    train_seconds: float  # this call of fit (after a resume: the resumed part only)
    total_train_seconds: float | None  # every part of the run; None when an older checkpoint
    total_cpu_seconds: float | None  # resumed from did not record its parts' time
    output_dir: str
    is_main_process: bool


class NonFiniteLossError(RuntimeError):
    """The loss, the gradients or the weights became NaN or infinite; nothing was saved."""


@dataclass(frozen=True)
class TrainSettings:
    """The ``train:`` section of a config, with defaults."""

    epochs: int = 10
    batch_size: int = 8
    eval_batch_size: int = 8
    grad_accum: int = 1
    lr: float = 3e-5
    weight_decay: float = 0.01
    schedule: str = "poly"
    schedule_unit: str = "step"
    power: float = 0.9
    min_lr: float = 0.0
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    clip_grad_norm: float | None = 1.0
    optimizer: str = "adamw"
    mixed_precision: str = "no"
    num_workers: int = 0
    eval_every: int = 1
    checkpoint_every_steps: int = 0
    keep_checkpoints: int = 2
    stop_after_steps: int | None = None
    log_every: int = 10
    compile: bool | str = False
    trackers: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice(self.mixed_precision, MIXED_PRECISION_CHOICES, "train.mixed_precision")
        check_choice(self.schedule, SCHEDULES, "train.schedule")
        check_choice(self.schedule_unit, ("step", "epoch"), "train.schedule_unit")
        check_choice(self.optimizer, OPTIMIZERS, "train.optimizer")
        for name in ("batch_size", "eval_batch_size", "grad_accum", "eval_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}: must be >= 1, got {getattr(self, name)}")
        # log_every 0: no per-step loss lines (profile_training.py times steps without them)
        zero_allowed = ("warmup_steps", "num_workers", "checkpoint_every_steps", "keep_checkpoints")
        for name in (*zero_allowed, "log_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name}: must be >= 0, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"train.lr: must be a finite number > 0, got {self.lr}")
        for name in ("weight_decay", "min_lr"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ConfigError(
                    f"train.{name}: must be finite and >= 0, got {getattr(self, name)}"
                )
        if not 0.0 <= self.warmup_ratio <= 1.0:
            raise ConfigError(f"train.warmup_ratio: must lie in [0, 1], got {self.warmup_ratio}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrainSettings:
        """The ``train`` section (plus the top-level ``seed``); unknown keys are refused."""
        section = dict(config.get("train") or {})
        if "seed" not in section and "seed" in config:
            section["seed"] = config["seed"]
        # YAML 1.1 reads a bare `no` (as in `--set train.mixed_precision=no`) as False;
        # "none" is the same word in the predictor's older vocabulary.
        if section.get("mixed_precision") in (False, None, "none"):
            section["mixed_precision"] = "no"
        return build_section(cls, section, "train")


def _trackers(kind: str) -> list[str]:
    if kind == "none":
        return []
    if kind == "auto":
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            return []
        return ["tensorboard"]
    return [k.strip() for k in kind.split(",") if k.strip()]


class Trainer:
    """Runs one training job of ``task`` as described by ``config`` into ``output_dir``."""

    def __init__(
        self,
        task: TrainingTask,
        config: dict,
        output_dir: str | Path,
        *,
        resume: str | Path | None = None,
        show_progress: bool = True,
        time_phases: bool = False,
    ) -> None:
        self.task = task
        self.config = config
        self.output_dir = Path(output_dir)
        self.resume = Path(resume) if resume is not None else None
        self.show_progress = show_progress
        # time_phases: a PhaseTimer times each step's phases (scripts/profile_training.py);
        # it synchronises the device at every phase, so ordinary runs leave it off.
        self.time_phases = time_phases
        self.phase_timer: PhaseTimer | None = None
        refuse_unknown_keys(config, {*RUN_KEYS, *task.config_sections}, "")
        self.settings = TrainSettings.from_config(config)

    # ------------------------------------------------------------------ set-up
    def _setup(self) -> None:
        s = self.settings
        self.accelerator = make_accelerator(
            mixed_precision=resolve_mixed_precision(s.mixed_precision),
            gradient_accumulation_steps=s.grad_accum,
            log_with=_trackers(s.trackers) or None,
            project_dir=str(self.output_dir),
            step_scheduler_with_optimizer=False,
        )
        acc = self.accelerator
        if self.time_phases:
            self.phase_timer = PhaseTimer(acc.device)
        set_seed(s.seed)
        if acc.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.output_dir / "config.yaml")
        acc.wait_for_everyone()

        self.task.prepare_data(show_progress=self.show_progress)
        model = self.task.build_model()
        if s.compile:  # in place: parameter names and checkpoints stay those of the model
            model.compile(**({"backend": s.compile} if isinstance(s.compile, str) else {}))
        train_set, eval_sets = self.task.build_datasets(model)
        if len(train_set) == 0:
            raise ValueError("the training set is empty")
        self.sampler = EpochShuffleSampler(len(train_set), seed=s.seed)
        train_dl = DataLoader(
            train_set,
            batch_size=s.batch_size,
            sampler=self.sampler,
            num_workers=s.num_workers,
            drop_last=len(train_set) >= s.batch_size * acc.num_processes,
            persistent_workers=s.num_workers > 0,
            # Its own generator: creating an iterator must not draw from the global RNG,
            # or a run resumed mid-epoch would see other dropout/masking draws.
            generator=torch.Generator().manual_seed(s.seed),
        )
        eval_dls = {
            split: DataLoader(
                ds,
                batch_size=s.eval_batch_size,
                shuffle=False,
                num_workers=s.num_workers,
                generator=torch.Generator().manual_seed(s.seed),
            )
            for split, ds in eval_sets.items()
        }
        groups = self.task.param_groups(model, lr=s.lr, weight_decay=s.weight_decay)
        optimizer = build_optimizer(s.optimizer, groups, lr=s.lr, weight_decay=s.weight_decay)
        prepared = acc.prepare(model, optimizer, train_dl, *eval_dls.values())
        self.model, self.optimizer, self.train_dl = prepared[:3]
        self.eval_dls = dict(zip(eval_dls, prepared[3:]))

        self.updates_per_epoch = max(1, math.ceil(len(self.train_dl) / s.grad_accum))
        self.total_steps = s.epochs * self.updates_per_epoch
        warmup = s.warmup_steps or round(s.warmup_ratio * self.total_steps)
        self.scheduler = build_scheduler(
            self.optimizer,
            kind=s.schedule,
            total_steps=self.total_steps,
            warmup_steps=warmup,
            power=s.power,
            min_lr=s.min_lr,
            base_lr=s.lr,
            steps_per_epoch=self.updates_per_epoch if s.schedule_unit == "epoch" else None,
        )
        trackers = _trackers(s.trackers)
        if trackers:
            acc.init_trackers(self.output_dir.name, config=flatten_numbers(self.config))
        self.log = MetricsLog(self.output_dir / "metrics.jsonl")
        self.train_log = MetricsLog(self.output_dir / "train_log.jsonl")
        self.ckpt_root = self.output_dir / "checkpoints"
        self.epoch = 0
        self.global_step = 0
        self.batches_done_in_epoch = 0
        self.best_value: float | None = None
        self.last_eval: dict[str, Any] = {}
        # time spent by earlier parts of a resumed run (wall, process CPU): None = unknown
        self.earlier_seconds: tuple[float, float] | None = (0.0, 0.0)
        self._fit_clock = (time.perf_counter(), time.process_time())

    # ---------------------------------------------------------------- checkpoints
    def _save(self, name: str, *, best: bool) -> Path:
        acc = self.accelerator
        self._check_weights()
        tmp = self.ckpt_root / f"{name}.tmp"
        if acc.is_main_process:
            tmp = ckpt.begin(self.ckpt_root, name)
            self.task.save_model(acc.unwrap_model(self.model), tmp)
            state = tmp / ckpt.STATE_DIR
            ckpt.save_tensors(self.optimizer.state_dict(), state / "optimizer.pt")
            ckpt.save_tensors(self.scheduler.state_dict(), state / "scheduler.pt")
            ckpt.write_json(
                {
                    "epoch": self.epoch,
                    "global_step": self.global_step,
                    "batches_done_in_epoch": self.batches_done_in_epoch,
                    "best_metric": self.task.best_metric,
                    "best_value": self.best_value,
                    "selection": getattr(self.task, "selection_rule", None),
                    "num_processes": acc.num_processes,
                    **self._time_so_far(),
                },
                state / ckpt.PROGRESS_FILE,
            )
        acc.wait_for_everyone()
        ckpt.write_json(ckpt.capture_rng(), tmp / ckpt.STATE_DIR / f"rng-{acc.process_index}.json")
        acc.wait_for_everyone()
        final = tmp.with_suffix("")
        if acc.is_main_process:
            final = ckpt.commit(self.ckpt_root, tmp, best=best, keep=self.settings.keep_checkpoints)
        acc.wait_for_everyone()
        return final

    def _time_so_far(self) -> dict[str, float | None]:
        """Wall and CPU seconds of training so far, earlier parts of a resumed run included
        (None when a checkpoint it resumed from did not record them); the main process's CPU
        time, data loading and evaluation included."""
        if self.earlier_seconds is None:
            return {"train_seconds": None, "train_cpu_seconds": None}
        wall, cpu = self._fit_clock
        return {
            "train_seconds": self.earlier_seconds[0] + time.perf_counter() - wall,
            "train_cpu_seconds": self.earlier_seconds[1] + time.process_time() - cpu,
        }

    def _load(self, path: Path) -> None:
        acc = self.accelerator
        state = path / ckpt.STATE_DIR
        progress = ckpt.read_json(state / ckpt.PROGRESS_FILE)
        if progress.get("best_metric") != self.task.best_metric:
            raise ckpt.CheckpointError(
                f"{path}: written by a {progress.get('best_metric')!r}-scored task, "
                f"this run is {self.task.name!r} ({self.task.best_metric!r})"
            )
        self.task.load_weights(acc.unwrap_model(self.model), path)
        self.optimizer.load_state_dict(ckpt.load_tensors(state / "optimizer.pt"))
        self.scheduler.load_state_dict(ckpt.load_tensors(state / "scheduler.pt"))
        rng_file = state / f"rng-{acc.process_index}.json"
        if rng_file.is_file():
            ckpt.restore_rng(ckpt.read_json(rng_file))
        self.epoch = int(progress["epoch"])
        self.global_step = int(progress["global_step"])
        self.batches_done_in_epoch = int(progress["batches_done_in_epoch"])
        self.best_value = progress.get("best_value")
        wall, cpu = progress.get("train_seconds"), progress.get("train_cpu_seconds")
        self.earlier_seconds = None if wall is None or cpu is None else (float(wall), float(cpu))
        if acc.is_main_process:
            self.log.truncate_after(self.global_step)
            self.train_log.truncate_after(self.global_step)
        acc.print(
            f"resumed from {path} at epoch {self.epoch + 1}, step {self.global_step} "
            f"({self.batches_done_in_epoch} batches into the epoch)"
        )

    # ------------------------------------------------------------------ loop
    def _evaluate(self, epoch: int) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        with eval_mode(self.model):
            for split, dl in self.eval_dls.items():
                metrics = self.task.evaluate(self.model, dl, self.accelerator)
                results[split] = metrics
                if self.accelerator.is_main_process:
                    self.log.write(
                        {"epoch": epoch, "step": self.global_step, "split": split, **metrics}
                    )
                self.accelerator.log(
                    flatten_numbers(metrics, prefix=f"{split}/"), step=self.global_step
                )
        return results

    def _stop_if_any(self, bad: bool, device: torch.device, what: str) -> None:
        """Stop every process if ``bad`` holds on any, naming the last good checkpoint."""
        flag = torch.tensor([1.0 if bad else 0.0], device=device)
        if self.accelerator.reduce(flag, reduction="sum").item() > 0:
            last = self.ckpt_root / "last"
            kept = str(last.resolve()) if last.exists() else "none written yet"
            raise NonFiniteLossError(
                f"{what} at epoch {self.epoch + 1}, step {self.global_step}; stopped without "
                f"saving. Last good checkpoint: {kept}"
            )

    def _check_finite(self, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        if not bool(torch.isfinite(loss.detach()).all()):
            detail = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items())
            self._stop_if_any(True, loss.device, f"non-finite loss ({detail})")
        else:
            self._stop_if_any(False, loss.device, "non-finite loss")

    def _check_gradients(self, norm: torch.Tensor | float | None) -> None:
        """Refuse an update from non-finite gradients (fp16 loss scaling skips those itself)."""
        if self.accelerator.scaler is not None:
            return
        params = [p for p in self.model.parameters() if p.grad is not None]
        if norm is None:
            if not params:
                return
            norm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(p.grad.detach().float()) for p in params])
            )
        norm = torch.as_tensor(norm)
        device = params[0].device if params else self.accelerator.device
        self._stop_if_any(
            not bool(torch.isfinite(norm)), device, f"non-finite gradients (norm {float(norm)})"
        )

    def _check_weights(self) -> None:
        """Refuse to save weights that hold NaN or inf (e.g. an overflow inside the optimizer)."""
        model = self.accelerator.unwrap_model(self.model)
        bad = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
        device = next(model.parameters()).device
        what = f"non-finite weights ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})"
        self._stop_if_any(bool(bad), device, what)

    def fit(self) -> TrainSummary:
        """Train to the end (or to ``stop_after_steps``); return a summary of the run."""
        self._fit_clock = (time.perf_counter(), time.process_time())
        self._setup()
        if self.resume is not None:
            self._load(ckpt.find_resume_checkpoint(self.resume))
        stopped_early = False
        self.model.train()
        while self.epoch < self.settings.epochs and not stopped_early:
            stopped_early = self._train_epoch()
            if not stopped_early:
                self._end_epoch()
        self.accelerator.end_training()
        return TrainSummary(
            epochs_done=self.epoch,
            global_step=self.global_step,
            stopped_early=stopped_early,
            best_metric=self.task.best_metric,
            best_value=self.best_value,
            last_eval=self.last_eval,
            train_seconds=time.perf_counter() - self._fit_clock[0],
            total_train_seconds=self._time_so_far()["train_seconds"],
            total_cpu_seconds=self._time_so_far()["train_cpu_seconds"],
            output_dir=str(self.output_dir),
            is_main_process=self.accelerator.is_main_process,
        )

    def _epoch_loader(self) -> Any:
        """The current epoch's train loader, past the batches a resumed run already did."""
        skip = self.batches_done_in_epoch
        loader = self.accelerator.skip_first_batches(self.train_dl, skip) if skip else self.train_dl
        # accelerate re-seeds the sampler from its own iteration counter on each pass;
        # pin it to the epoch so a resumed run draws the same order.
        for dl in {id(loader): loader, id(self.train_dl): self.train_dl}.values():
            dl.set_epoch(self.epoch)
        return loader

    def _train_epoch(self) -> bool:
        """Run the rest of the current epoch; True when ``stop_after_steps`` was reached."""
        acc = self.accelerator
        loader = self._epoch_loader()
        bar = tqdm(
            total=len(self.train_dl),
            initial=self.batches_done_in_epoch,
            desc=f"epoch {self.epoch + 1}/{self.settings.epochs}",
            disable=not (acc.is_main_process and self.show_progress),
            dynamic_ncols=True,
        )
        tick, seen = time.perf_counter(), 0
        if self.phase_timer is not None:
            self.phase_timer.restart()
        try:
            for batch in loader:
                self._mark("data")
                loss, terms = self._train_step(batch)
                self.batches_done_in_epoch += 1
                seen += _batch_size(batch) * acc.num_processes
                bar.update(1)
                if not acc.sync_gradients:
                    continue
                rate = seen / max(1e-9, time.perf_counter() - tick)
                stop = self._after_update(loss, terms, bar, rate)
                self._mark("bookkeeping", end_step=True)
                if stop:
                    return True
        finally:
            bar.close()
        return False

    def _train_step(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forward, backward, clip, check and (on a gradient-sync step) update."""
        acc, clip = self.accelerator, self.settings.clip_grad_norm
        with acc.accumulate(self.model):
            loss, terms = self.task.compute_loss(self.model, batch)
            self._mark("forward")
            self._check_finite(loss, terms)
            acc.backward(loss)
            self._mark("backward")
            if acc.sync_gradients:
                norm = acc.clip_grad_norm_(self.model.parameters(), clip) if clip else None
                self._check_gradients(norm)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self._mark("optimizer")
        return loss, terms

    def _mark(self, phase: str, *, end_step: bool = False) -> None:
        """Charge the time since the last mark to ``phase`` when a phase timer is attached."""
        if self.phase_timer is not None:
            self.phase_timer.mark(phase)
            if end_step:
                self.phase_timer.end_step()

    def _after_update(
        self, loss: torch.Tensor, terms: dict[str, torch.Tensor], bar: Any, rate: float
    ) -> bool:
        """Schedule, progress bar, logs and step checkpoints after an update; True: stop."""
        s = self.settings
        self.scheduler.step()
        self.global_step += 1
        lr = self.scheduler.get_last_lr()[0]
        bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.2e}", sps=f"{rate:.1f}")
        if s.log_every and self.global_step % s.log_every == 0:
            self._log_train(loss, terms, lr)
        if s.checkpoint_every_steps and self.global_step % s.checkpoint_every_steps == 0:
            self._save(f"step-{self.global_step:07d}", best=False)
        return s.stop_after_steps is not None and self.global_step >= s.stop_after_steps

    def _log_train(self, loss: torch.Tensor, terms: dict[str, torch.Tensor], lr: float) -> None:
        """Tracker logs, and ``train_log.jsonl`` (the main process's batch loss, the curve)."""
        values = {k: float(v) for k, v in terms.items()}
        self.accelerator.log(
            {f"train/{k}": v for k, v in values.items()} | {"train/lr": lr}, step=self.global_step
        )
        if self.accelerator.is_main_process:
            self.train_log.write(
                {"epoch": self.epoch + 1, "step": self.global_step}
                | {"loss": float(loss.detach()), "lr": lr}
                | values
            )

    def _end_epoch(self) -> None:
        """Close the epoch: evaluate when due, track the best, save the epoch's checkpoint."""
        s = self.settings
        self.epoch += 1
        self.batches_done_in_epoch = 0
        is_best = not self.eval_dls  # without evaluation, the latest is the best there is
        if self.eval_dls and (self.epoch % s.eval_every == 0 or self.epoch == s.epochs):
            self.last_eval = self._evaluate(self.epoch)
            value = next(iter(self.last_eval.values())).get(self.task.best_metric)
            if value is not None and (self.best_value is None or value > self.best_value):
                self.best_value, is_best = float(value), True
            key = self.task.best_metric
            scores = ", ".join(
                f"{split} {key} {m.get(key, float('nan')):.2f}"
                + (f" [{m['selection']}]" if isinstance(m.get("selection"), str) else "")
                for split, m in self.last_eval.items()
            )
            self.accelerator.print(f"epoch {self.epoch}: {scores}")
        self._save(f"epoch-{self.epoch:04d}", best=is_best)


def _batch_size(batch: Any) -> int:
    if isinstance(batch, dict):
        for value in batch.values():
            if isinstance(value, torch.Tensor):
                return int(value.shape[0])
            if isinstance(value, list):
                return len(value)
    return 1
