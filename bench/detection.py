"""Labs 05 and 06: train the small Faster R-CNN and the tiny YOLO on the same synthetic scenes; score box
mAP on lab 05's validation scenes; compare their inference speed; time the proposal generator.

    python bench/detection.py --profile cpu               # ci | cpu | gpu (default: the course's profile)
    python bench/detection.py --only yolo                 # some parts: faster_rcnn, yolo, compare, proposals
    python bench/detection.py --skip-yolo --skip-proposals
    python bench/detection.py --set steps=300 lr=3e-3     # override Faster R-CNN settings (experiments)
    python bench/detection.py --only yolo --set-yolo steps=300 grid=12

The recipes are those of ``course_utils/training/recipes/detection.py`` (FASTER_RCNN, YOLO): what labs 05
and 06 train. Targets: Faster R-CNN box mAP50 >= 0.90 (gpu), >= 0.70 (cpu); YOLO mAP50 >= 0.80 (gpu),
>= 0.60 (cpu, training <= about 150 s on 2 cores); YOLO inference >= 3x the Faster R-CNN's images/s on
the same device (gpu). ``compare`` times both detectors at batch 1 and 16 on the validation scenes
(with the models trained in this run; an untrained one when its training is skipped: the cost of
inference hardly depends on the weights). Prints ``RESULT {...json...}`` lines (protocol: bench/run_all.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from course_utils.config import Profile, get_device, profile_name
from course_utils.data import render_scenes
from course_utils.evaluation.detection import box_map
from course_utils.evaluation.timing import images_per_second, seconds_per_call
from course_utils.models.detection import detect, yolo_detect
from course_utils.training.checkpoints import save_trained
from course_utils.training.recipes import detection as recipes
from course_utils.training.recipes import with_overrides

TARGETS = {"faster_rcnn": {"ci": None, "cpu": 0.70, "gpu": 0.90}, "yolo": {"ci": None, "cpu": 0.60, "gpu": 0.80}}
SPEED_TARGET = {"ci": None, "cpu": None, "gpu": 3.0}     # YOLO images/s over the Faster R-CNN's (batch 16)
NAMES = {"faster_rcnn": "Faster R-CNN", "yolo": "YOLO"}
LAB = {"faster_rcnn": "05", "yolo": "06"}


def load() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def predict(kind: str, model: torch.nn.Module, images: torch.Tensor, batch_size: int = 16) -> list[dict]:
    return yolo_detect(model, images, batch_size=batch_size) if kind == "yolo" else detect(model, images, batch_size)


def images_per_s(kind: str, model: torch.nn.Module, images: torch.Tensor, batch_size: int) -> float:
    """Detection throughput (network and decoding / post-processing, results on the CPU), after a warm-up batch."""
    return images_per_second(lambda batch: predict(kind, model, batch, batch_size), images, batch_size)


def bench_detector(kind: str, profile: str, p: recipes.FasterRCNNRecipe | recipes.YoloRecipe, device: torch.device,
                   seed: int, eval_every: int,
                   save: str | None = None) -> tuple[dict, torch.nn.Module]:
    """Train one detector with its recipe (``kind``: faster_rcnn or yolo); score it on the validation scenes."""
    val, val_targets = recipes.validation_scenes(p, seed)
    train_fn = recipes.train_yolo if kind == "yolo" else recipes.train_faster_rcnn
    load_start, start, cpu_start = load(), time.perf_counter(), time.process_time()
    infer = {}

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        tick = time.perf_counter()
        preds = predict(kind, m, val.images)
        infer["images_per_s"] = len(preds) / (time.perf_counter() - tick)
        scores = box_map(preds, val_targets)
        agnostic = box_map([dict(d, labels=torch.ones_like(d["labels"])) for d in preds],
                           [dict(t, labels=torch.ones_like(t["labels"])) for t in val_targets])
        line = ""
        if kind == "yolo":   # the default score threshold is 0.2 (lab 06); a lower one trades precision for recall
            low = box_map(yolo_detect(m, val.images, score_threshold=0.05), val_targets)
            infer["score_0.05"] = {"map_50": round(float(low["map_50"]), 4), "map": round(float(low["map"]), 4)}
            line = f"; at score threshold 0.05: mAP50 {low['map_50']:.3f}, mAP {low['map']:.3f}"
        print(f"  {time.perf_counter() - start:6.1f} s (load {load()}): mAP50 {scores['map_50']:.3f}, "
              f"mAP {scores['map']:.3f} (class-agnostic mAP50 {agnostic['map_50']:.3f}){line}", flush=True)
        return scores

    model, history = train_fn(p, Profile(profile, device), evaluate=evaluate, seed=seed,
                              progress=sys.stderr.isatty(), eval_every=eval_every)
    if save:
        save_trained(model, p, save)
    cpu_seconds = time.process_time() - cpu_start      # both threads, training and evaluations
    params = sum(q.numel() for q in model.parameters())
    target = TARGETS[kind][profile]
    curve = [[s, round(v, 4)] for s, v in zip(history.eval_seconds, history.metrics["map_50"])]
    train_rate = p.steps * p.batch / history.seconds
    print(f"{NAMES[kind]}, profile {profile} on {device} ({torch.get_num_threads()} threads), {params / 1e6:.2f} M "
          f"params: {p.steps} steps x {p.batch} scenes of {p.size} px, 1-{p.max_things} things; "
          f"training {history.seconds:.1f} s, {train_rate:.1f} images/s; inference {infer['images_per_s']:.1f} "
          f"images/s; {cpu_seconds:.0f} s CPU time in all; load {load_start} -> {load()}")
    print(f"validation ({p.n_val} unseen scenes): mAP50 {history.last('map_50'):.3f}, "
          f"mAP {history.last('map'):.3f}" + (f" (target mAP50 {target})" if target else ""))
    result = {"lab": LAB[kind], "name": kind, "metric": "box mAP50", "value": round(history.last("map_50"), 4),
              "target": target, "seconds": round(history.seconds, 1), "map": round(history.last("map"), 4),
              "train_images_per_s": round(train_rate, 1), "infer_images_per_s": round(infer["images_per_s"], 1),
              "params_M": round(params / 1e6, 2), "cpu_seconds": round(cpu_seconds, 1), "profile": profile,
              "device": str(device), "load": [load_start, load()], "curve": curve,
              "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(p).items()}}
    if "score_0.05" in infer:
        result["at_score_threshold_0.05"] = infer["score_0.05"]
    reached = [s for s, v in curve if target is not None and v >= target]
    if reached:
        result["seconds_to_target"] = reached[0]
    return result, model


def bench_compare(profile: str, settings: dict[str, Any], models: dict[str, torch.nn.Module],
                  device: torch.device, seed: int) -> dict:
    """Images/s of both detectors at batch 1 and 16 on the same device and validation scenes."""
    if settings["yolo"].size != settings["faster_rcnn"].size:
        raise ValueError("the two recipes must use the same scenes to be compared")
    val, _ = recipes.validation_scenes(settings["yolo"], seed)
    scenes = recipes.scene_config(settings["yolo"])
    build = {"yolo": lambda: recipes.build_yolo(settings["yolo"], len(scenes.things)),
             "faster_rcnn": lambda: recipes.build_faster_rcnn(settings["faster_rcnn"], len(scenes.detection_classes))}
    trained = {k: k in models for k in build}
    rates = {}
    for kind in ("yolo", "faster_rcnn"):
        model = (models.get(kind) or build[kind]()).to(device)
        for b in (1, 16):
            rates[kind, b] = images_per_s(kind, model, val.images, b)
    for b in (1, 16):
        print(f"batch {b:2d}: YOLO {rates['yolo', b]:7.1f} images/s, Faster R-CNN {rates['faster_rcnn', b]:7.1f} "
              f"images/s ({rates['yolo', b] / rates['faster_rcnn', b]:.1f}x) on {device}, {len(val)} scenes "
              f"(load {load()})")
    n = len(val)
    return {"lab": "06", "name": "yolo vs faster_rcnn", "metric": "speed vs Faster R-CNN, batch 16 (x)",
            "value": round(rates["yolo", 16] / rates["faster_rcnn", 16], 2), "target": SPEED_TARGET[profile],
            "peer": "lab 05's Faster R-CNN", "seconds": round(n / rates["yolo", 16], 3),
            "peer_seconds": round(n / rates["faster_rcnn", 16], 3),
            "speedup_batch_1": round(rates["yolo", 1] / rates["faster_rcnn", 1], 2),
            "yolo_images_per_s": {"1": round(rates["yolo", 1], 1), "16": round(rates["yolo", 16], 1)},
            "faster_rcnn_images_per_s": {"1": round(rates["faster_rcnn", 1], 1),
                                         "16": round(rates["faster_rcnn", 16], 1)},
            "trained": trained, "images": n, "profile": profile, "device": str(device), "load": load()}


def bench_rcnn_speed(profile: str, images: torch.Tensor, proposals: list[torch.Tensor]) -> dict:
    """Inference time of the R-CNN-style (a CNN per proposal) and Fast R-CNN-style (one CNN per image)
    models on the same images and proposals (untrained: the cost does not depend on the weights)."""
    from course_utils.models.detection import RCNN, FastRCNN

    seconds = {}
    for name, model in (("rcnn", RCNN(4)), ("fast", FastRCNN(4))):
        model.eval()
        with torch.no_grad():
            seconds[name] = len(images) * seconds_per_call(lambda i, m=model: m(images[i:i + 1], proposals[i:i + 1]),
                                                           len(images))
    k = sum(len(p) for p in proposals) / len(proposals)
    print(f"R-CNN-style {seconds['rcnn'] / len(images) * 1000:.1f} ms/image, Fast R-CNN-style "
          f"{seconds['fast'] / len(images) * 1000:.1f} ms/image ({k:.0f} proposals/image)")
    return {"lab": "05", "name": "fast_rcnn vs rcnn", "metric": "speed vs R-CNN-style (x)",
            "value": round(seconds["rcnn"] / seconds["fast"], 2), "peer": "R-CNN-style per-proposal CNN",
            "seconds": round(seconds["fast"], 3), "peer_seconds": round(seconds["rcnn"], 3),
            "proposals_per_image": round(k, 1), "profile": profile, "load": load()}


def bench_proposals(profile: str, p: recipes.FasterRCNNRecipe, seed: int) -> list[dict]:
    from course_utils.ops.proposals import proposal_recall, selective_search

    n = {"ci": 4, "cpu": 16, "gpu": 32}[profile]
    scenes = render_scenes(recipes.scene_config(p), range(n), seed=20_000 + seed)
    gts = [scenes.target(i)["boxes"] for i in range(n)]
    images = [scenes.images[i].permute(1, 2, 0).numpy() for i in range(n)]
    results = []
    tick = time.perf_counter()
    ours = [selective_search(im) for im in images]
    seconds = (time.perf_counter() - tick) / n
    recall, recall_70 = proposal_recall(ours, gts), proposal_recall(ours, gts, iou=0.7)
    per_image = sum(len(b) for b in ours) / n
    print(f"selective search (ours): recall@0.5 {recall:.3f}, @0.7 {recall_70:.3f}, {per_image:.0f} proposals/image, "
          f"{seconds:.3f} s/image (load {load()})")
    results.append(bench_rcnn_speed(profile, scenes.images, ours))
    results.append({"lab": "05", "name": "proposals", "metric": "recall@0.5", "value": round(float(recall), 4),
                    "recall_0.7": round(recall_70, 4), "images": n, "seconds": round(seconds * n, 2),
                    "seconds_per_image": round(seconds, 4),
                    "proposals_per_image": round(per_image, 1), "profile": profile, "load": load()})
    try:
        import cv2  # optional: opencv-contrib-python-headless, never a dependency of the package
        ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    except (ImportError, AttributeError):
        print("cv2.ximgproc not installed: no OpenCV comparison")
        return results
    cv2.setNumThreads(1)
    tick, theirs = time.perf_counter(), []
    for im in images:
        ss.setBaseImage((im[..., ::-1] * 255).astype("uint8").copy())
        ss.switchToSelectiveSearchFast()
        rects = torch.as_tensor(ss.process(), dtype=torch.float32).reshape(-1, 4)
        theirs.append(torch.cat([rects[:, :2], rects[:, :2] + rects[:, 2:]], 1))
    cv_seconds = (time.perf_counter() - tick) / n
    cv_recall, cv_recall_70 = proposal_recall(theirs, gts), proposal_recall(theirs, gts, iou=0.7)
    cv_per_image = sum(len(b) for b in theirs) / n
    print(f"selective search (OpenCV fast): recall@0.5 {cv_recall:.3f}, @0.7 {cv_recall_70:.3f}, {cv_per_image:.0f} "
          f"proposals/image, {cv_seconds:.3f} s/image")
    results.append({"lab": "05", "name": "proposals vs OpenCV", "metric": "speed vs OpenCV selective search (x)",
                    "value": round(cv_seconds / seconds, 3), "peer": "cv2.ximgproc selective search (fast)",
                    "seconds": round(seconds * n, 2), "peer_seconds": round(cv_seconds * n, 2),
                    "recall": round(float(recall), 4), "peer_recall": round(float(cv_recall), 4),
                    "peer_recall_0.7": round(cv_recall_70, 4),
                    "peer_proposals_per_image": round(cv_per_image, 1), "profile": profile})
    return results


PARTS = ("faster_rcnn", "yolo", "compare", "proposals")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(recipes.FASTER_RCNN), default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=0, help="also evaluate every n steps")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=None, help="run only these parts")
    parser.add_argument("--skip-detector", "--skip-faster-rcnn", dest="skip_faster_rcnn", action="store_true",
                        help="no Faster R-CNN training")
    parser.add_argument("--skip-yolo", action="store_true", help="no YOLO training")
    parser.add_argument("--skip-compare", action="store_true", help="no inference speed comparison")
    parser.add_argument("--skip-proposals", action="store_true")
    parser.add_argument("--save", default=None, help="save the trained Faster R-CNN here (checkpoints.save_trained)")
    parser.add_argument("--save-yolo", default=None, help="save the trained YOLO here (checkpoints.save_trained)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override Faster R-CNN settings")
    parser.add_argument("--set-yolo", nargs="*", default=[], metavar="KEY=VALUE", help="override YOLO settings")
    args = parser.parse_args(argv)
    device = get_device()
    profile = args.profile or profile_name(device)
    settings = {"faster_rcnn": with_overrides(recipes.FASTER_RCNN[profile], args.set),
                "yolo": with_overrides(recipes.YOLO[profile], args.set_yolo)}
    skip = {"faster_rcnn": args.skip_faster_rcnn, "yolo": args.skip_yolo, "compare": args.skip_compare,
            "proposals": args.skip_proposals}
    parts = [part for part in PARTS if (part in args.only if args.only else not skip[part])]
    results, models = [], {}
    for kind in ("faster_rcnn", "yolo"):
        if kind in parts:
            result, models[kind] = bench_detector(kind, profile, settings[kind], device, args.seed, args.eval_every,
                                                  args.save if kind == "faster_rcnn" else args.save_yolo)
            results.append(result)
    if "compare" in parts:
        results.append(bench_compare(profile, settings, models, device, args.seed))
    if "proposals" in parts:
        results += bench_proposals(profile, settings["faster_rcnn"], args.seed)
    for result in results:
        print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
