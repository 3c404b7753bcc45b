"""The training loop of every lab: one function, :func:`train`, configured by a :class:`TrainConfig`.

    config = TrainConfig(steps=500, lr=1e-3)
    history = train(model, batches, config, loss_fn=F.cross_entropy,
                    evaluate=lambda m: {"mIoU": ...})

- ``batches`` gives ``(inputs, targets)`` pairs: either a function ``batches(step) -> batch`` (the
  synthetic scenes: batch ``step`` is always the same, see :class:`SceneBatches`) or any iterable
  such as a ``DataLoader`` (cycled through, epoch after epoch).
- The loss is ``loss_fn(model(inputs), targets)``; without ``loss_fn`` the model itself is called as
  ``model(inputs, targets)`` and must return the loss, as torchvision's detection models do in
  train mode. Either may return a tensor or a dict of losses, which are summed (each part is logged).
- On CUDA it uses mixed precision (bfloat16 autocast, or float16 with a gradient scaler) and, for
  long runs, ``torch.compile``; on the CPU neither (they do not pay off there).
- It is deterministic: everything is seeded with ``config.seed``. With ``config.checkpoint`` set it
  saves model, optimizer, schedule and random states every ``checkpoint_every`` steps, and a later
  call with the same checkpoint path resumes where it stopped, giving the same result as a run that
  was never interrupted.

The returned :class:`History` holds the loss of every step and the metrics of every evaluation.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from course_utils.config import get_device, seed_everything
from course_utils.models.evaluate import predict, segmentation_scores  # noqa: F401  (re-exported for the labs)

Batch = tuple[Any, Any]


@dataclass
class TrainConfig:
    """How to train. Defaults suit the labs' small models on synthetic scenes."""

    steps: int = 500                      # optimizer steps
    lr: float = 1e-3                      # peak learning rate
    weight_decay: float = 1e-4
    optimizer: str = "adamw"              # "adamw" or "sgd" (momentum 0.9, Nesterov)
    schedule: str = "cosine"              # "cosine" (to 0) or "constant"; both after linear warmup
    warmup: int = 0                       # warmup steps
    grad_clip: float | None = None        # max gradient norm, or None
    amp: bool | None = None               # mixed precision; None = on CUDA only
    compile: bool | None = None           # torch.compile; None = on CUDA for runs of >= 1000 steps
    eval_every: int = 0                   # evaluate every n steps (0: only at the end)
    checkpoint: str | Path | None = None  # file to save to and resume from
    checkpoint_every: int = 0             # save every n steps (0: only at the end)
    seed: int = 0
    device: str | None = None             # None: the course's device (CUDA, MPS, CPU)
    progress: bool = True                 # tqdm progress bar with the running loss
    deterministic: bool = True            # cuDNN deterministic algorithms

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        def positive_int(name: str, value: object, zero_ok: bool = False) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero_ok else 1):
                raise ValueError(f"TrainConfig.{name} must be an int >= {0 if zero_ok else 1}, got {value!r}")

        positive_int("steps", self.steps)
        for name in ("warmup", "eval_every", "checkpoint_every", "seed"):
            positive_int(name, getattr(self, name), zero_ok=True)
        if not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr!r}")
        if not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise ValueError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"TrainConfig.optimizer must be 'adamw' or 'sgd', got {self.optimizer!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"TrainConfig.schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig.grad_clip must be > 0 or None, got {self.grad_clip!r}")


@dataclass
class History:
    """What happened: ``loss[i]`` at ``step[i]``, loss parts (dict losses), evaluations, seconds."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    eval_step: list[int] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)   # training time at each evaluation
    metrics: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0                                       # training time (evaluations excluded)

    def last(self, name: str) -> float:
        """The latest value of a metric (or ``"loss"``)."""
        values = self.loss if name == "loss" else self.metrics.get(name)
        if not values:
            raise KeyError(f"no values recorded for {name!r}; metrics: {sorted(self.metrics)}")
        return values[-1]

    def plot(self, axes: Any = None, smooth: int = 20) -> Any:
        """Loss (smoothed over ``smooth`` steps) and each metric against the step."""
        import matplotlib.pyplot as plt

        n = 1 + len(self.metrics)
        if axes is None:
            _, axes = plt.subplots(1, n, figsize=(4 * n, 3))
        axes = np.atleast_1d(axes)
        loss = np.asarray(self.loss)
        if len(loss) >= smooth > 1:
            loss = np.convolve(loss, np.ones(smooth) / smooth, mode="valid")
        axes[0].plot(self.step[len(self.step) - len(loss):], loss)
        axes[0].set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
        for ax, (name, values) in zip(axes[1:], self.metrics.items()):
            ax.plot(self.eval_step, values, "o-")
            ax.set(xlabel="step", title=name)
        return axes


# ---- batches ---------------------------------------------------------------------------------
class SceneBatches:
    """Batch ``step`` of synthetic scenes: ``batches(step) -> (images, targets)``.

    ``task="semantic"``: ``images`` ``B x 3 x H x W`` and ``targets`` ``B x H x W`` int64.
    ``task="detection"``: a list of ``3 x H x W`` images and a list of torchvision target dicts.
    Without ``pool``, batch ``step`` holds scenes ``step * B ... step * B + B - 1`` of an endless
    stream, rendered on the fly (fast on a GPU). With ``pool=n``, a fixed training set of ``n`` scenes
    is rendered once (on first use) and each batch draws ``B`` of them at random (seeded by step):
    the faster choice on a CPU.
    """

    def __init__(self, config: Any, batch_size: int, seed: int = 0, device: torch.device | str = "cpu",
                 task: str = "semantic", pool: int | None = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if task not in ("semantic", "detection"):
            raise ValueError(f"task must be 'semantic' or 'detection', got {task!r}")
        if pool is not None and (isinstance(pool, bool) or not isinstance(pool, int) or pool < 1):
            raise ValueError(f"pool must be a positive int or None, got {pool!r}")
        self.config, self.batch_size, self.seed = config, batch_size, seed
        self.device, self.task, self.pool = torch.device(device), task, pool
        self._scenes: Any = None

    def indices(self, step: int) -> list[int]:
        """The scene numbers in batch ``step``."""
        first = step * self.batch_size
        if self.pool is None:
            return list(range(first, first + self.batch_size))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return torch.randint(self.pool, (self.batch_size,), generator=g).tolist()

    def _render(self, indices: list[int]) -> Any:
        from course_utils.data import render_scenes

        if self.pool is None:
            return render_scenes(self.config, indices, self.seed, self.device)
        if self._scenes is None:
            self._scenes = render_scenes(self.config, range(self.pool), self.seed, self.device)
        s = self._scenes
        idx = torch.as_tensor(indices, device=s.images.device)
        return type(s)(s.config, s.images[idx], s.semantic[idx], s.instances[idx], s.instance_labels[idx])

    def __call__(self, step: int) -> Batch:
        scenes = self._render(self.indices(step))
        if self.task == "semantic":
            return scenes.images, scenes.semantic
        return list(scenes.images), [scenes.target(i) for i in range(len(scenes))]


def _batch_stream(batches: Callable[[int], Batch] | Iterable[Batch], start: int, seed: int):
    """Yield batches from step ``start`` on (a function of the step, or an iterable cycled by epoch)."""
    if callable(batches) and not isinstance(batches, Iterable):
        step = start
        while True:
            yield batches(step)
            step += 1
    try:
        per_epoch = len(batches)  # type: ignore[arg-type]
    except TypeError:
        per_epoch = None
    if not per_epoch:
        raise ValueError("batches must be a function step -> (inputs, targets) or a non-empty iterable "
                         "with a length, such as a DataLoader")
    epoch, skip = divmod(start, per_epoch)
    while True:
        # A DataLoader without its own generator draws its shuffling seed from torch's global RNG
        # when it starts. Seed that draw by epoch, in a fork, so the loader is reproducible and the
        # global RNG (dropout, augmentation) is left alone, which makes resuming exact.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + epoch)
            iterator = iter(batches)
            first = next(iterator, None)
        if first is None:
            raise ValueError("batches is an empty iterable")
        for i, batch in enumerate(itertools.chain([first], iterator)):
            if i >= skip:
                yield batch
        epoch, skip = epoch + 1, 0


def to_device(value: Any, device: torch.device) -> Any:
    """Move tensors inside (nested) lists, tuples and dicts to ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


def _total_loss(out: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """A loss tensor, or a dict of them (summed); returns the total and the parts as floats."""
    if isinstance(out, torch.Tensor):
        if out.numel() != 1:
            raise ValueError(f"the loss must be a scalar tensor, got shape {tuple(out.shape)}; "
                             "reduce it (e.g. .mean())")
        return out.reshape(()), {}
    if isinstance(out, Mapping) and out and all(isinstance(v, torch.Tensor) for v in out.values()):
        parts = {k: v.reshape(()) for k, v in out.items()}
        return sum(parts.values()), {k: float(v.detach()) for k, v in parts.items()}
    kind = f"a dict with keys {sorted(out)}" if isinstance(out, Mapping) else type(out).__name__
    raise ValueError(f"expected a loss: a scalar tensor or a dict of scalar tensors, got {kind}. "
                     "Pass loss_fn=... (e.g. torch.nn.functional.cross_entropy) when the model "
                     "returns predictions rather than losses.")


def _call_with_targets(model: Callable, inputs: Any, targets: Any, first: bool) -> Any:
    try:
        return model(inputs, targets)
    except TypeError as err:
        if not first:
            raise
        raise ValueError(f"without loss_fn the model is called as model(inputs, targets) and must return "
                         f"the loss, but that call failed ({err}). Pass loss_fn=... (e.g. "
                         f"torch.nn.functional.cross_entropy) for a model that takes only inputs.") from err


# ---- checkpoints -----------------------------------------------------------------------------
def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    scaler: Any, step: int, history: History, config: TrainConfig) -> None:
    """Write everything needed to resume (atomically: a crash never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "scaler": scaler.state_dict(), "step": step, "history": asdict(history),
             "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
             "rng": _rng_state()}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _lr_factor(config: TrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        if config.schedule == "constant":
            return 1.0
        done = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))
    return factor


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD; no weight decay on biases and norm parameters (1-D tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.lr)


# ---- the loop --------------------------------------------------------------------------------
def train(model: nn.Module, batches: Callable[[int], Batch] | Iterable[Batch], config: TrainConfig | None = None,
          loss_fn: Callable[[Any, Any], Any] | None = None,
          evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None) -> History:
    """Train ``model`` in place for ``config.steps`` steps and return the :class:`History`.

    Args:
        model: any ``nn.Module``; moved to the device.
        batches: ``batches(step) -> (inputs, targets)``, or an iterable of such pairs (a DataLoader).
        config: a :class:`TrainConfig` (defaults if ``None``).
        loss_fn: ``loss_fn(model(inputs), targets) -> loss`` (tensor or dict of tensors); ``None``
            means ``model(inputs, targets)`` returns the loss (torchvision detection models).
        evaluate: ``evaluate(model) -> {"name": value}``, called every ``eval_every`` steps and at the
            end, in eval mode under ``torch.no_grad()``.
    """
    config = config or TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    config.validate()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if loss_fn is not None and not callable(loss_fn):
        raise ValueError(f"loss_fn must be a function (output, targets) -> loss, got {type(loss_fn).__name__}")
    if evaluate is not None and not callable(evaluate):
        raise ValueError(f"evaluate must be a function model -> dict of metrics, got {type(evaluate).__name__}")

    device = torch.device(config.device) if config.device else get_device()
    cuda = device.type == "cuda"
    amp = cuda if config.amp is None else config.amp and cuda
    amp_dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
    if cuda:
        torch.backends.cudnn.benchmark = not config.deterministic
        torch.backends.cudnn.deterministic = config.deterministic
    seed_everything(config.seed)

    model.to(device).train()
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config))
    scaler = torch.amp.GradScaler(device.type, enabled=amp and amp_dtype == torch.float16)
    history, start = History(), 0
    if config.checkpoint and Path(config.checkpoint).exists():
        state = torch.load(config.checkpoint, map_location="cpu", weights_only=False)  # RNG states stay on the CPU
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        history, start = History(**state["history"]), state["step"]
        _set_rng_state(state["rng"])

    use_compile = config.compile if config.compile is not None else cuda and config.steps >= 1000
    forward = torch.compile(model) if use_compile else model

    eval_time = 0.0  # seconds spent evaluating, left out of the training time

    def run_eval(step: int) -> None:
        nonlocal eval_time
        tick = time.perf_counter()
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, amp_dtype, enabled=amp):
            results = dict(evaluate(model))
        model.train()
        history.eval_step.append(step)
        history.eval_seconds.append(round(base + tick - began - eval_time, 3))
        for name, value in results.items():
            history.metrics.setdefault(name, []).append(float(value))
        eval_time += time.perf_counter() - tick

    from tqdm.auto import tqdm

    began, base = time.perf_counter(), history.seconds
    bar = tqdm(total=config.steps, initial=start, disable=not config.progress, desc="training")
    stream = _batch_stream(batches, start, config.seed)
    running = None
    for step in range(start, config.steps):
        inputs, targets = to_device(next(stream), device)
        with torch.autocast(device.type, amp_dtype, enabled=amp):
            try:
                out = forward(inputs) if loss_fn is not None else _call_with_targets(forward, inputs, targets,
                                                                                     step == start)
            except Exception as err:  # torch.compile can fail on some models/platforms: fall back to eager
                if forward is model or step != start:
                    raise
                warnings.warn(f"torch.compile failed ({type(err).__name__}: {err}); training without it",
                              stacklevel=2)
                forward = model
                out = forward(inputs) if loss_fn is not None else _call_with_targets(forward, inputs, targets, True)
            loss, parts = _total_loss(loss_fn(out, targets) if loss_fn is not None else out)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss is {loss.item()} at step {step}; lower TrainConfig.lr "
                                     f"(now {config.lr}) or set grad_clip")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()

        value = loss.item()
        history.step.append(step + 1)
        history.loss.append(value)
        for name, v in parts.items():
            history.parts.setdefault(name, []).append(v)
        running = value if running is None else 0.95 * running + 0.05 * value
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}", refresh=False)
        done = step + 1
        if evaluate is not None and config.eval_every and done % config.eval_every == 0 and done < config.steps:
            run_eval(done)
        if config.checkpoint and config.checkpoint_every and done % config.checkpoint_every == 0:
            history.seconds = base + time.perf_counter() - began - eval_time
            save_checkpoint(config.checkpoint, model, optimizer, scheduler, scaler, done, history, config)
    bar.close()
    if evaluate is not None and (not history.eval_step or history.eval_step[-1] != config.steps):
        run_eval(config.steps)
    history.seconds = base + time.perf_counter() - began - eval_time
    if config.checkpoint:
        save_checkpoint(config.checkpoint, model, optimizer, scheduler, scaler, config.steps, history, config)
    return history
