"""The training loop of every lab: one function, :func:`train`, configured by a ``TrainConfig``.

    history = train(model, batches, TrainConfig(steps=500, lr=1e-3), loss_fn=F.cross_entropy,
                    evaluate=lambda m: {"mIoU": ...}, profile=P)

- ``batches``: a function ``batches(step) -> (inputs, targets)`` (e.g. :class:`~course_utils.data.SceneBatches`)
  or any iterable such as a ``DataLoader`` (cycled through, epoch after epoch).
- The loss is ``loss_fn(model(inputs), targets)``; without ``loss_fn``, ``model(inputs, targets)`` must
  return it, as torchvision's detection models do in train mode. A dict of losses is summed (each part logged).
- The profile decides the device, mixed precision and ``torch.compile`` (CUDA only).
- Deterministic: everything is seeded with ``config.seed``. With ``config.checkpoint`` it saves every
  state needed to resume, and a later call resumes where it stopped with the same result.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils.config import Profile, Runtime, current_profile, seed_everything
from course_utils.data.batches import Batch, batch_stream, to_device
from course_utils.training.checkpoints import load_checkpoint, save_checkpoint
from course_utils.training.config import TrainConfig
from course_utils.training.history import History
from course_utils.training.optim import lr_factor, make_optimizer


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


# ---- the loop --------------------------------------------------------------------------------
@dataclass
class _Run:
    """The state of one training run."""

    model: nn.Module
    forward: Callable
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    runtime: Runtime
    history: History
    start: int

    def stateful(self) -> dict[str, Any]:
        return {"model": self.model, "optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler}


def _begin(model: nn.Module, config: TrainConfig, runtime: Runtime) -> _Run:
    """Seed, move the model, build optimizer and schedule, and resume from the checkpoint if any."""
    if runtime.device.type == "cuda":
        torch.backends.cudnn.benchmark = not config.deterministic
        torch.backends.cudnn.deterministic = config.deterministic
    seed_everything(config.seed)
    model.to(runtime.device).train()
    optimizer = make_optimizer(model, config.optimizer, config.lr, config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config.steps, config.warmup, config.schedule))
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.amp and runtime.amp_dtype == torch.float16)
    run = _Run(model, torch.compile(model) if runtime.compile else model, optimizer, scheduler, scaler, runtime,
               History(), 0)
    if config.checkpoint and Path(config.checkpoint).exists():
        run.start, extra = load_checkpoint(config.checkpoint, **run.stateful())
        run.history = History(**extra["history"])
    return run


def _save(run: _Run, step: int, config: TrainConfig, path: str | Path) -> None:
    extra = {"history": asdict(run.history),
             "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}}
    save_checkpoint(path, step, extra, **run.stateful())


def _loss(run: _Run, inputs: Any, targets: Any, loss_fn: Callable | None, first: bool) -> tuple[torch.Tensor, dict]:
    """Forward pass and loss under autocast; falls back to eager if ``torch.compile`` fails at once."""
    def forward() -> Any:
        return run.forward(inputs) if loss_fn is not None else _call_with_targets(run.forward, inputs, targets, first)

    with torch.autocast(run.runtime.device.type, run.runtime.amp_dtype, enabled=run.runtime.amp):
        try:
            out = forward()
        except Exception as err:  # torch.compile can fail on some models/platforms: fall back to eager
            if run.forward is run.model or not first:
                raise
            warnings.warn(f"torch.compile failed ({type(err).__name__}: {err}); training without it", stacklevel=3)
            run.forward = run.model
            out = forward()
        return _total_loss(loss_fn(out, targets) if loss_fn is not None else out)


def _update(run: _Run, loss: torch.Tensor, config: TrainConfig, step: int) -> None:
    if not torch.isfinite(loss):
        raise FloatingPointError(f"the loss is {loss.item()} at step {step}; lower TrainConfig.lr "
                                 f"(now {config.lr}) or set grad_clip")
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    if config.grad_clip:
        run.scaler.unscale_(run.optimizer)
        nn.utils.clip_grad_norm_(run.model.parameters(), config.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()


def _evaluate(run: _Run, evaluate: Callable, step: int, seconds: float) -> None:
    """Call ``evaluate(model)`` in eval mode without gradients; record its metrics at ``step``."""
    run.model.eval()
    with torch.no_grad(), torch.autocast(run.runtime.device.type, run.runtime.amp_dtype, enabled=run.runtime.amp):
        results = dict(evaluate(run.model))
    run.model.train()
    run.history.eval_step.append(step)
    run.history.eval_seconds.append(round(seconds, 3))
    for name, value in results.items():
        run.history.metrics.setdefault(name, []).append(float(value))


def _checked(model: object, config: object, loss_fn: object, evaluate: object, profile: object) -> TrainConfig:
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
    if profile is not None and not isinstance(profile, Profile):
        raise TypeError(f"profile must be the lab's Profile (P = get_profile()), got {type(profile).__name__}")
    return config


def train(model: nn.Module, batches: Callable[[int], Batch] | Iterable[Batch], config: TrainConfig | None = None,
          loss_fn: Callable[[Any, Any], Any] | None = None,
          evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
          profile: Profile | None = None) -> History:
    """Train ``model`` in place for ``config.steps`` steps and return the :class:`History`.

    Args:
        model: any ``nn.Module``; moved to the device.
        batches: ``batches(step) -> (inputs, targets)``, or an iterable of such pairs (a DataLoader).
        config: a :class:`TrainConfig` (defaults if ``None``).
        loss_fn: ``loss_fn(model(inputs), targets) -> loss`` (tensor or dict of tensors); ``None``
            means ``model(inputs, targets)`` returns the loss (torchvision detection models).
        evaluate: ``evaluate(model) -> {"name": value}``, every ``eval_every`` steps and at the end
            (eval mode, no gradients).
        profile: the lab's :class:`~course_utils.config.Profile` (``None``: this machine's): the device,
            AMP and ``torch.compile`` (:meth:`~course_utils.config.Profile.runtime`); ``config.device`` /
            ``amp`` / ``compile``, when set, override it.
    """
    config = _checked(model, config, loss_fn, evaluate, profile)
    profile = profile or current_profile()
    profile = profile.on(config.device) if config.device else profile
    run = _begin(model, config, profile.runtime(config.steps, config.amp, config.compile))
    history, eval_time = run.history, 0.0  # seconds spent evaluating, left out of the training time
    began, base = time.perf_counter(), history.seconds

    def elapsed() -> float:
        return base + time.perf_counter() - began - eval_time

    def run_eval(evaluate: Callable[[nn.Module], Mapping[str, float]], step: int) -> None:
        nonlocal eval_time
        tick = time.perf_counter()
        _evaluate(run, evaluate, step, elapsed())
        eval_time += time.perf_counter() - tick

    from tqdm.auto import tqdm

    bar = tqdm(total=config.steps, initial=run.start, disable=not config.progress, desc="training")
    stream, running = batch_stream(batches, run.start, config.seed), None
    for step in range(run.start, config.steps):
        inputs, targets = to_device(next(stream), profile.device)
        loss, parts = _loss(run, inputs, targets, loss_fn, first=step == run.start)
        _update(run, loss, config, step)
        history.record(step + 1, loss.item(), parts)
        running = history.loss[-1] if running is None else 0.95 * running + 0.05 * history.loss[-1]
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}", refresh=False)
        done = step + 1
        if evaluate is not None and config.eval_every and done % config.eval_every == 0 and done < config.steps:
            run_eval(evaluate, done)
        if config.checkpoint and config.checkpoint_every and done % config.checkpoint_every == 0:
            history.seconds = elapsed()
            _save(run, done, config, config.checkpoint)
    bar.close()
    if evaluate is not None and (not history.eval_step or history.eval_step[-1] != config.steps):
        run_eval(evaluate, config.steps)
    history.seconds = elapsed()
    if config.checkpoint:
        _save(run, config.steps, config, config.checkpoint)
    return history

