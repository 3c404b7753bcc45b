"""Train FCN-8s on synthetic scenes and report time, images/s and validation mIoU.

    python bench/fcn.py --profile cpu        # ci | cpu | gpu (default: the course's profile)

The recipe is lab 02's (``course_utils/training/recipes/segmentation.py``, read by the notebook too).
Targets (lab 02): mIoU >= 0.90 in the gpu profile, >= 0.80 in the cpu profile within 5 minutes
on 2 CPU cores. The last line is machine-readable: ``RESULT {...json...}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F

from course_utils.config import Profile, get_device, profile_name
from course_utils.evaluation import segmentation_scores
from course_utils.models import FCN
from course_utils.training import train
from course_utils.training.recipes import segmentation as recipes
from course_utils.training.recipes import with_overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(recipes.FCN), default=None)
    parser.add_argument("--variant", choices=("32s", "16s", "8s"), default="8s")
    parser.add_argument("--steps", type=int, default=None, help="override the profile's steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=0, help="also evaluate every n steps")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override recipe fields, e.g. --set width=12 size=48")
    args = parser.parse_args(argv)
    device = get_device()
    profile = args.profile or profile_name(device)
    r = with_overrides(recipes.FCN[profile], args.set + ([f"steps={args.steps}"] if args.steps else []))
    p = dataclasses.asdict(r)

    scenes = recipes.scene_config(r)
    val = recipes.validation_scenes(r, seed=args.seed)                        # lab 02's unseen scenes
    model = FCN(scenes.num_classes, args.variant, width=r.width)
    config = recipes.fcn_config(r, seed=args.seed, progress=sys.stderr.isatty(), eval_every=args.eval_every)
    config = dataclasses.replace(config, device=str(device))
    batches = recipes.scene_batches(r, Profile(profile, device), seed=args.seed)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start, cpu_start = time.perf_counter(), time.process_time()
    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        result = segmentation_scores(m, val.images, val.semantic, scenes.num_classes)
        if args.eval_every:
            print(f"  {time.perf_counter() - start:6.1f} s wall, {time.process_time() - cpu_start:6.1f} s CPU: "
                  f"mIoU {result['mIoU']:.3f}", flush=True)
        return result

    history = train(model, batches, config, loss_fn=F.cross_entropy, evaluate=evaluate)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    miou = history.last("mIoU")
    images_per_s = p["steps"] * p["batch"] / seconds
    target = r.target
    print(f"FCN-{args.variant}, profile {profile} on {device} ({torch.get_num_threads()} threads, "
          f"load average {load:.1f} at start): {p['steps']} steps x {p['batch']} images of "
          f"{p['size']}x{p['size']}, width {p['width']}")
    if args.eval_every:
        print("mIoU by step:", {s: round(v, 3) for s, v in zip(history.eval_step, history.metrics["mIoU"])})
    print(f"time {seconds:.1f} s wall ({history.seconds:.1f} s training, the rest evaluation and data), "
          f"{cpu_seconds:.1f} s CPU time, {images_per_s:.0f} images/s, final loss {history.loss[-1]:.4f}; "
          f"load average {load_after:.1f} at the end")
    print(f"validation ({p['n_val']} unseen scenes): mIoU {miou:.3f}, pixel accuracy "
          f"{history.last('pixel accuracy'):.3f}" + (f" (target {target})" if target else ""))
    curve = [[s, round(v, 4)] for s, v in zip(history.eval_seconds, history.metrics["mIoU"])]
    reached = [s for s, v in curve if target is not None and v >= target]
    result = {"lab": "02", "name": f"fcn{args.variant}", "metric": "mIoU", "value": round(miou, 4),
              "target": target, "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
              "images_per_s": round(images_per_s, 1), "profile": profile, "device": str(device),
              "load": [round(load, 2), round(load_after, 2)], "curve": curve,
              "steps": p["steps"], "size": p["size"], "width": p["width"]}
    if reached:
        result["seconds_to_target"] = reached[0]
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
