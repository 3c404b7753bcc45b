"""Lab 09: FCN-8s (lab 02's recipe), a DeepLab-style and a PSPNet-style model with half its steps (60-75% of its
training time on 2 CPU cores), and the dense CRF on FCN-8s's output: mIoU, boundary F-score, parameters, images/s,
training time.

    python bench/context.py --profile cpu            # ci | cpu | gpu (default: the course's profile)
    python bench/context.py --only deeplab --set deeplab_steps=500 rates=1,2,3

The recipes are lab 09's (``course_utils/training/recipes/context.py``) and lab 02's for FCN-8s (trained here, not
loaded: a benchmark measures). Targets: the DeepLab-style model's mIoU >= 0.92 in the gpu profile; in the cpu
profile it should beat FCN-8s (the notebook states the share of training time it had), and the CRF should raise
FCN-8s's boundary F-score.
One ``RESULT {...json...}`` line per model and one for the CRF. If ``pydensecrf`` (the ``pydensecrf2`` package)
is importable, a last line compares our naive mean field with its filtered one (speed, agreement).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F

from course_utils.config import Profile, get_device, profile_name
from course_utils.evaluation import boundary_f1, confusion_matrix, mean_over_present, per_class_iou
from course_utils.ops.crf import dense_crf
from course_utils.training import train
from course_utils.training.recipes import context as recipes
from course_utils.training.recipes import segmentation as lab02
from course_utils.training.recipes import with_overrides

MODELS = ("fcn8s", "deeplab", "psp")


def load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def logits_of(model: torch.nn.Module, images: torch.Tensor, batch: int = 32) -> torch.Tensor:
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        return torch.cat([model(images[i:i + batch].to(device)).float().cpu() for i in range(0, len(images), batch)])


def scores(pred: torch.Tensor, truth: torch.Tensor, num_classes: int, tolerance: float) -> dict[str, float]:
    miou = mean_over_present(per_class_iou(confusion_matrix(pred, truth, num_classes)))
    return {"mIoU": miou, "boundary_f1": boundary_f1(pred, truth, num_classes, tolerance)}


def images_per_second(model: torch.nn.Module, images: torch.Tensor, batch: int = 32) -> float:
    logits_of(model, images[:batch], batch)                                   # warm-up
    tick = time.perf_counter()
    logits_of(model, images, batch)
    return len(images) / (time.perf_counter() - tick)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(recipes.CONTEXT), default=None)
    parser.add_argument("--only", nargs="*", choices=MODELS, default=list(MODELS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=0, help="also evaluate every n steps")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override lab 09's recipe fields, e.g. --set deeplab_steps=500 rates=1,2,3")
    parser.add_argument("--fcn-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override lab 02's recipe for FCN-8s, e.g. --fcn-set steps=1000")
    parser.add_argument("--fcn8s", type=Path, default=None, metavar="FILE",
                        help="load lab 02's FCN-8s from FILE (save_trained's format) instead of training it; its "
                             "training time is then the mean step time measured here times lab 02's steps")
    args = parser.parse_args(argv)
    device = get_device()
    profile = args.profile or profile_name(device)
    P = Profile(profile, device)
    R = with_overrides(recipes.CONTEXT[profile], args.set)
    R2 = with_overrides(lab02.FCN[profile], args.fcn_set)
    scenes = recipes.scene_config(R)
    C = scenes.num_classes
    val = recipes.validation_scenes(R)
    truth = val.semantic.cpu()
    progress = sys.stderr.isatty()
    print(f"profile {profile} on {device} ({torch.get_num_threads()} threads), load average {load():.1f}; lab 09 "
          f"recipe {R}; FCN-8s: lab 02's {R2}", flush=True)

    results = {}
    for name in args.only:
        start_load = load()
        torch.manual_seed(args.seed)
        if name == "fcn8s" and args.fcn8s:
            from course_utils.training.checkpoints import load_trained

            model = load_trained(args.fcn8s, R2, lab02.build_fcn8s).to(device)
            logits = logits_of(model, val.images)
            result = scores(logits.argmax(1), truth, C, R.tolerance)
            per_step = recipes.seconds_per_step(model, recipes.scene_batches(R, P, args.seed), steps=20)
            seconds = per_step * R2.steps
            params, speed = sum(p.numel() for p in model.parameters()), images_per_second(model, val.images)
            print(f"fcn8s: loaded from {args.fcn8s}; {R2.steps} steps x {per_step * 1000:.0f} ms/step (measured "
                  f"here) = {seconds:.0f} s, {params:,d} parameters, {speed:.0f} images/s, mIoU "
                  f"{result['mIoU']:.3f}, boundary F {result['boundary_f1']:.3f}; load {start_load:.1f} -> "
                  f"{load():.1f}", flush=True)
            print("RESULT " + json.dumps({"lab": "09", "name": name, "metric": "mIoU",
                                          "value": round(result["mIoU"], 4),
                                          "target": R2.target, "seconds": round(seconds, 1),
                                          "boundary_f1": round(result["boundary_f1"], 4), "params": params,
                                          "images_per_s": round(speed, 1), "steps": R2.steps, "loaded": str(args.fcn8s),
                                          "profile": profile, "device": str(device),
                                          "load": [round(start_load, 2), round(load(), 2)]}), flush=True)
            results[name] = (model, logits, result)
            continue
        if name == "fcn8s":
            model, steps = lab02.build_fcn8s(R2), R2.steps
            config = lab02.fcn_config(R2, seed=args.seed, progress=progress, eval_every=args.eval_every)
        else:
            model = recipes.build_deeplab(R, C) if name == "deeplab" else recipes.build_pspnet(R, C)
            steps = R.deeplab_steps if name == "deeplab" else R.psp_steps
            config = recipes.context_config(R, steps, seed=args.seed, progress=progress, eval_every=args.eval_every)

        def evaluate(m: torch.nn.Module) -> dict[str, float]:
            return scores(logits_of(m, val.images).argmax(1), truth, C, R.tolerance)

        history = train(model, recipes.scene_batches(R, P, args.seed), config, loss_fn=F.cross_entropy,
                        evaluate=evaluate, profile=P)
        logits = logits_of(model, val.images)
        result = scores(logits.argmax(1), truth, C, R.tolerance)
        params = sum(p.numel() for p in model.parameters())
        speed = images_per_second(model, val.images)
        curve = [[s, round(v, 4)] for s, v in zip(history.eval_seconds, history.metrics["mIoU"])]
        target = R.target if name == "deeplab" else (R2.target if name == "fcn8s" else None)
        print(f"{name}: {steps} steps in {history.seconds:.1f} s ({history.seconds / steps * 1000:.0f} ms/step), "
              f"{params:,d} parameters, {speed:.0f} images/s, mIoU {result['mIoU']:.3f}, boundary F "
              f"{result['boundary_f1']:.3f}; load {start_load:.1f} -> {load():.1f}", flush=True)
        if args.eval_every:
            print("  mIoU by step:", {s: round(v, 3) for s, v in zip(history.eval_step, history.metrics["mIoU"])})
        row = {"lab": "09", "name": name, "metric": "mIoU", "value": round(result["mIoU"], 4), "target": target,
               "seconds": round(history.seconds, 1), "boundary_f1": round(result["boundary_f1"], 4),
               "params": params, "images_per_s": round(speed, 1), "steps": steps, "profile": profile,
               "device": str(device), "load": [round(start_load, 2), round(load(), 2)], "curve": curve}
        print("RESULT " + json.dumps(row), flush=True)
        results[name] = (model, logits, result)

    if "fcn8s" in results:
        _, logits, before = results["fcn8s"]
        tick = time.perf_counter()
        q = dense_crf(logits, val.images.cpu(), **recipes.crf_settings(R))
        seconds = time.perf_counter() - tick
        after = scores(q.argmax(1), truth, C, R.tolerance)
        gain = {k: round(after[k] - before[k], 4) for k in after}
        print(f"CRF on FCN-8s ({len(val.images)} images, {R.crf_iterations} iterations, naive N x N): {seconds:.1f} s; "
              f"mIoU {before['mIoU']:.3f} -> {after['mIoU']:.3f}, boundary F {before['boundary_f1']:.3f} -> "
              f"{after['boundary_f1']:.3f}", flush=True)
        print("RESULT " + json.dumps({"lab": "09", "name": "fcn8s+crf", "metric": "boundary F-score",
                                      "value": round(after["boundary_f1"], 4), "target": None,
                                      "seconds": round(seconds, 1), "mIoU": round(after["mIoU"], 4), "gain": gain,
                                      "profile": profile, "device": str(device)}), flush=True)
        compare_pydensecrf(logits, val.images.cpu(), q, R)
    return 0


def compare_pydensecrf(logits: torch.Tensor, images: torch.Tensor, ours: torch.Tensor,
                       R: recipes.ContextRecipe) -> None:
    """Our naive mean field against pydensecrf's filtered one (only if ``pydensecrf`` is importable)."""
    try:
        import numpy as np
        import pydensecrf.densecrf as dcrf
    except ImportError:
        print("pydensecrf is not installed: no comparison with the permutohedral-lattice implementation")
        return
    n, c, h, w = logits.shape
    agree, tick = [], time.perf_counter()
    for i in range(n):
        d = dcrf.DenseCRF2D(w, h, c)
        d.setUnaryEnergy(np.ascontiguousarray(-torch.log_softmax(logits[i], 0).reshape(c, -1).numpy()))
        d.addPairwiseGaussian(sxy=R.theta_gamma, compat=R.w_spatial)
        rgb = np.ascontiguousarray((images[i].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
        d.addPairwiseBilateral(sxy=R.theta_alpha, srgb=R.theta_beta * 255, rgbim=rgb, compat=R.w_bilateral)
        q = np.array(d.inference(R.crf_iterations)).reshape(c, h, w)
        agree.append(float((q.argmax(0) == ours[i].argmax(0).numpy()).mean()))
    seconds = time.perf_counter() - tick
    print(f"pydensecrf: {seconds:.2f} s for {n} images; labels agree with ours on {np.mean(agree):.1%} of the pixels")
    print("RESULT " + json.dumps({"lab": "09", "name": "pydensecrf agreement", "metric": "label agreement",
                                  "value": round(float(np.mean(agree)), 4), "seconds": round(seconds, 2)}))


if __name__ == "__main__":
    raise SystemExit(main())
