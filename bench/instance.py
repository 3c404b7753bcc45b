"""Lab 07: train the small Mask R-CNN on lab 05's scenes and the keypoint R-CNN on stick figures; score box
and mask mAP (torchmetrics, ``iou_type=("bbox", "segm")``) and keypoint OKS AP (pycocotools) on held-out scenes.

    python bench/instance.py --profile cpu                # ci | cpu | gpu (default: the course's profile)
    python bench/instance.py --only mask_rcnn             # some parts: mask_rcnn, keypoints
    python bench/instance.py --set steps=600 lr=3e-3      # override Mask R-CNN settings (experiments)
    python bench/instance.py --only keypoints --set-keypoints steps=300
    python bench/instance.py --save trained/07_mask_rcnn_cpu.pt

The recipes are those of ``course_utils/training/recipes/instance.py`` (MASK_RCNN, KEYPOINT_RCNN): what
lab 07 trains. Targets: mask mAP50 >= 0.85 (cpu: training and evaluation within about 3.5 min on 2 cores)
and >= 0.90 with mask mAP >= 0.70 (gpu). Prints ``RESULT {...json...}`` lines (protocol: bench/run_all.py).
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

from course_utils.config import Profile, get_device, profile_name
from course_utils.evaluation.detection import instance_map
from course_utils.evaluation.keypoints import FIGURE_SIGMA, keypoint_map
from course_utils.models.detection import detect
from course_utils.training.checkpoints import save_trained
from course_utils.training.recipes import detection, instance, with_overrides

TARGETS = {"mask_map_50": {"ci": None, "cpu": 0.85, "gpu": 0.90}, "mask_map": {"ci": None, "cpu": None, "gpu": 0.70}}
PARTS = ("mask_rcnn", "keypoints")


def load() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def settings(recipe: object) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(recipe).items()}


def bench_mask_rcnn(profile: str, r: instance.MaskRCNNRecipe, device: torch.device, seed: int, eval_every: int,
                    save: str | None) -> list[dict]:
    """Train lab 07's Mask R-CNN with its recipe; box and mask mAP on lab 05's validation scenes."""
    val, val_targets = detection.validation_scenes(r, seed)
    load_start, start, cpu_start = load(), time.perf_counter(), time.process_time()
    infer: dict[str, float] = {}

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        tick = time.perf_counter()
        preds = detect(m, val.images)
        infer["images_per_s"] = len(preds) / (time.perf_counter() - tick)
        scores = instance_map(preds, val_targets)
        infer["eval_seconds"] = time.perf_counter() - tick
        print(f"  {time.perf_counter() - start:6.1f} s (load {load()}): box mAP50 {scores['map_50']:.3f}, mAP "
              f"{scores['map']:.3f}; mask mAP50 {scores['mask_map_50']:.3f}, mAP {scores['mask_map']:.3f} "
              f"(evaluation {infer['eval_seconds']:.1f} s)", flush=True)
        return scores

    model, history = instance.train_mask_rcnn(r, Profile(profile, device), evaluate=evaluate, seed=seed,
                                              progress=sys.stderr.isatty(), eval_every=eval_every)
    if save:
        save_trained(model, r, save)
    cpu_seconds = time.process_time() - cpu_start
    params = sum(q.numel() for q in model.parameters())
    train_rate = r.steps * r.batch / history.seconds
    last = {k: history.last(k) for k in ("map", "map_50", "mask_map", "mask_map_50")}
    print(f"Mask R-CNN, profile {profile} on {device} ({torch.get_num_threads()} threads), {params / 1e6:.2f} M "
          f"params: {r.steps} steps x {r.batch} scenes of {r.size} px, 1-{r.max_things} things; training "
          f"{history.seconds:.1f} s, {train_rate:.1f} images/s; evaluation {infer['eval_seconds']:.1f} s; inference "
          f"{infer['images_per_s']:.1f} images/s; {cpu_seconds:.0f} s CPU time in all; load {load_start} -> {load()}")
    print(f"validation ({r.n_val} unseen scenes): box mAP50 {last['map_50']:.3f}, mAP {last['map']:.3f}; mask mAP50 "
          f"{last['mask_map_50']:.3f}, mAP {last['mask_map']:.3f}")
    common = {"lab": "07", "seconds": round(history.seconds, 1), "eval_seconds": round(infer["eval_seconds"], 1),
              "train_images_per_s": round(train_rate, 1), "infer_images_per_s": round(infer["images_per_s"], 1),
              "params_M": round(params / 1e6, 2), "cpu_seconds": round(cpu_seconds, 1), "profile": profile,
              "device": str(device), "load": [load_start, load()]}
    results = []
    for key, metric in (("mask_map_50", "mask mAP50"), ("mask_map", "mask mAP")):
        target = TARGETS[key][profile]
        curve = [[s, round(v, 4)] for s, v in zip(history.eval_seconds, history.metrics[key])]
        result = {**common, "name": f"mask_rcnn {metric}", "metric": metric, "value": round(last[key], 4),
                  "target": target, "curve": curve}
        reached = [s for s, v in curve if target is not None and v >= target]
        if reached:
            result["seconds_to_target"] = reached[0]
        if key == "mask_map_50":
            result.update({"box_map_50": round(last["map_50"], 4), "box_map": round(last["map"], 4),
                           "settings": settings(r)})
        results.append(result)
    return results


def bench_keypoints(profile: str, r: instance.KeypointRCNNRecipe, device: torch.device, seed: int,
                    eval_every: int) -> dict:
    """Train lab 07's keypoint R-CNN on stick figures; OKS keypoint AP on held-out figures."""
    val, val_targets = instance.validation_figures(r, seed)
    load_start, start = load(), time.perf_counter()
    infer: dict[str, float] = {}

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        tick = time.perf_counter()
        preds = detect(m, val.images)
        scores = keypoint_map(preds, val_targets)
        infer["eval_seconds"] = time.perf_counter() - tick
        print(f"  {time.perf_counter() - start:6.1f} s (load {load()}): keypoint AP {scores['map']:.3f}, AP50 "
              f"{scores['map_50']:.3f}, AP75 {scores['map_75']:.3f} (OKS, sigma {FIGURE_SIGMA})", flush=True)
        return scores

    model, history = instance.train_keypoint_rcnn(r, Profile(profile, device), evaluate=evaluate, seed=seed,
                                                  progress=sys.stderr.isatty(), eval_every=eval_every)
    print(f"keypoint R-CNN, profile {profile} on {device}: {r.steps} steps x {r.batch} figure scenes of {r.size} px; "
          f"training {history.seconds:.1f} s; OKS AP {history.last('map'):.3f}, AP50 {history.last('map_50'):.3f} "
          f"on {r.n_val} unseen scenes; load {load_start} -> {load()}")
    curve = [[s, round(v, 4)] for s, v in zip(history.eval_seconds, history.metrics["map"])]
    return {"lab": "07", "name": "keypoint_rcnn", "metric": f"keypoint OKS AP (sigma {FIGURE_SIGMA})",
            "value": round(history.last("map"), 4), "target": None, "seconds": round(history.seconds, 1),
            "eval_seconds": round(infer["eval_seconds"], 1), "map_50": round(history.last("map_50"), 4),
            "map_75": round(history.last("map_75"), 4), "curve": curve, "profile": profile, "device": str(device),
            "load": [load_start, load()], "settings": settings(r)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(instance.MASK_RCNN), default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=0, help="also evaluate every n steps")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=None, help="run only these parts")
    parser.add_argument("--save", default=None, help="save the trained Mask R-CNN here (save_trained)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override Mask R-CNN settings")
    parser.add_argument("--set-keypoints", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override keypoint R-CNN settings")
    args = parser.parse_args(argv)
    device = get_device()
    profile = args.profile or profile_name(device)
    parts = args.only or PARTS
    results = []
    if "mask_rcnn" in parts:
        recipe = with_overrides(instance.MASK_RCNN[profile], args.set)
        results += bench_mask_rcnn(profile, recipe, device, args.seed, args.eval_every, args.save)
    if "keypoints" in parts:
        recipe = with_overrides(instance.KEYPOINT_RCNN[profile], args.set_keypoints)
        results.append(bench_keypoints(profile, recipe, device, args.seed, args.eval_every))
    for result in results:
        print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
