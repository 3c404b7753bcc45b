"""Lab 05: train the small Faster R-CNN on synthetic scenes; score box mAP; time the proposal generator.

    python bench/detection.py --profile cpu            # ci | cpu | gpu (default: the course's profile)
    python bench/detection.py --set steps=300 lr=3e-3  # override profile settings (experiments)
    python bench/detection.py --skip-proposals         # only the detector

Targets (lab 05): box mAP50 >= 0.90 in the gpu profile, >= 0.70 in the cpu profile (about 3.5 min
of training on 2 CPU cores). Prints ``RESULT {...json...}`` lines (protocol: bench/run_all.py).
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

from course_utils.config import get_device, profile_name
from course_utils.data import SceneConfig, render_scenes
from course_utils.evaluation.detection import box_map
from course_utils.models.detection import detect, small_faster_rcnn
from course_utils.training import TrainConfig, train

try:
    from course_utils.data import SceneBatches
except ImportError:  # before the move out of training.py
    from course_utils.training import SceneBatches

# What each profile trains (measurements in the lab-05 report). Scenes: side ``size`` px, 1..max_things
# things. Model: backbone width/depth, output stride 4 (dilated 3rd stage) or 8, FPN or not, anchor sides
# x ratios (h / w), box-head width ``rep``; sampling: anchors per image for the RPN loss (``rpn_batch``),
# proposals per image for the box head (``box_batch``) and their positive fraction (``box_pos``).
PROFILES = {
    "ci": {"size": 96, "max_things": 3, "width": 16, "depth": 2, "fpn": 0, "stride": 4, "anchors": "12,24,48",
           "ratios": "0.5,1.0,2.0", "rep": 128, "rpn_batch": 64, "box_batch": 64, "box_pos": 0.5,
           "batch": 4, "steps": 100, "lr": 4e-3, "warmup": 10, "n_val": 32, "pool": 256},
    "cpu": {"size": 96, "max_things": 3, "width": 32, "depth": 2, "fpn": 0, "stride": 4, "anchors": "12,24,48",
            "ratios": "0.5,1.0,2.0", "rep": 256, "rpn_batch": 64, "box_batch": 64, "box_pos": 0.5,
            "batch": 4, "steps": 1200, "lr": 4e-3, "warmup": 50, "n_val": 128, "pool": 2048},
    "gpu": {"size": 128, "max_things": 4, "width": 48, "depth": 3, "fpn": 0, "stride": 4, "anchors": "16,32,64",
            "ratios": "0.5,1.0,2.0", "rep": 512, "rpn_batch": 128, "box_batch": 128, "box_pos": 0.5,
            "batch": 16, "steps": 6000, "lr": 2e-3, "warmup": 300, "n_val": 512, "pool": 0},
}
TARGETS = {"ci": None, "cpu": 0.70, "gpu": 0.90}


def load() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def build(p: dict, num_classes: int) -> torch.nn.Module:
    return small_faster_rcnn(num_classes, p["size"], width=p["width"], depth=p["depth"], fpn=bool(p["fpn"]),
                             out_stride=p.get("stride", 8), out_channels=p.get("out_channels") or None,
                             sampling_ratio=p.get("sampling", 2),
                             anchor_sizes=tuple(int(a) for a in p["anchors"].split(",")),
                             aspect_ratios=tuple(float(r) for r in p["ratios"].split(",")),
                             representation=p["rep"], rpn_batch_size=p["rpn_batch"],
                             box_batch_size=p["box_batch"], box_positive_fraction=p["box_pos"])


def bench_detector(profile: str, p: dict, device: torch.device, seed: int, eval_every: int,
                   save: str | None = None) -> dict:
    scenes = SceneConfig(size=p["size"], max_things=p["max_things"])
    val = render_scenes(scenes, range(p["n_val"]), seed=10_000 + seed)   # unseen scenes
    val_targets = [val.target(i) for i in range(len(val))]
    model = build(p, len(scenes.detection_classes))
    params = sum(q.numel() for q in model.parameters())
    batches = SceneBatches(scenes, p["batch"], seed=seed, device=device, task="detection", pool=p["pool"] or None)
    config = TrainConfig(steps=p["steps"], lr=p["lr"], warmup=p["warmup"], seed=seed, device=str(device),
                         progress=sys.stderr.isatty(), eval_every=eval_every, grad_clip=10.0,
                         compile=False)  # torch.compile does not pay off on torchvision's detection models
    load_start, start, cpu_start = load(), time.perf_counter(), time.process_time()
    infer = {}

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        tick = time.perf_counter()
        preds = detect(m, val.images)
        infer["images_per_s"] = len(preds) / (time.perf_counter() - tick)
        scores = box_map(preds, val_targets)
        agnostic = box_map([dict(d, labels=torch.ones_like(d["labels"])) for d in preds],
                           [dict(t, labels=torch.ones_like(t["labels"])) for t in val_targets])
        print(f"  {time.perf_counter() - start:6.1f} s (load {load()}): mAP50 {scores['map_50']:.3f}, "
              f"mAP {scores['map']:.3f} (class-agnostic mAP50 {agnostic['map_50']:.3f})", flush=True)
        return scores

    history = train(model, batches, config, evaluate=evaluate)
    if save:
        torch.save(model.state_dict(), save)
    cpu_seconds = time.process_time() - cpu_start      # both threads, training and evaluations
    target = TARGETS[profile]
    curve = [[s, round(v, 4)] for s, v in zip(history.eval_seconds, history.metrics["map_50"])]
    print(f"Faster R-CNN, profile {profile} on {device} ({torch.get_num_threads()} threads), {params / 1e6:.2f} M "
          f"params: {p['steps']} steps x {p['batch']} scenes of {p['size']} px, 1-{p['max_things']} things; "
          f"training {history.seconds:.1f} s, {p['steps'] * p['batch'] / history.seconds:.1f} images/s; "
          f"inference {infer['images_per_s']:.1f} images/s; {cpu_seconds:.0f} s CPU time in all; load {load_start} -> {load()}")
    print(f"validation ({p['n_val']} unseen scenes): mAP50 {history.last('map_50'):.3f}, "
          f"mAP {history.last('map'):.3f}" + (f" (target mAP50 {target})" if target else ""))
    result = {"lab": "05", "name": "faster_rcnn", "metric": "box mAP50", "value": round(history.last("map_50"), 4),
              "target": target, "seconds": round(history.seconds, 1), "map": round(history.last("map"), 4),
              "train_images_per_s": round(p["steps"] * p["batch"] / history.seconds, 1),
              "infer_images_per_s": round(infer["images_per_s"], 1), "params_M": round(params / 1e6, 2), "cpu_seconds": round(cpu_seconds, 1),
              "profile": profile, "device": str(device), "load": [load_start, load()], "curve": curve,
              "settings": p}
    reached = [s for s, v in curve if target is not None and v >= target]
    if reached:
        result["seconds_to_target"] = reached[0]
    return result


def bench_rcnn_speed(profile: str, images: torch.Tensor, proposals: list[torch.Tensor]) -> dict:
    """Inference time of the R-CNN-style (a CNN per proposal) and Fast R-CNN-style (one CNN per image)
    models on the same images and proposals (untrained: the cost does not depend on the weights)."""
    from course_utils.models.detection import RCNN, FastRCNN

    seconds = {}
    for name, model in (("rcnn", RCNN(4)), ("fast", FastRCNN(4))):
        model.eval()
        with torch.no_grad():
            model(images[:1], proposals[:1])                      # warm-up
            tick = time.perf_counter()
            for i in range(len(images)):
                model(images[i:i + 1], proposals[i:i + 1])
            seconds[name] = time.perf_counter() - tick
    k = sum(len(p) for p in proposals) / len(proposals)
    print(f"R-CNN-style {seconds['rcnn'] / len(images) * 1000:.1f} ms/image, Fast R-CNN-style "
          f"{seconds['fast'] / len(images) * 1000:.1f} ms/image ({k:.0f} proposals/image)")
    return {"lab": "05", "name": "fast_rcnn vs rcnn", "metric": "speed vs R-CNN-style (x)",
            "value": round(seconds["rcnn"] / seconds["fast"], 2), "peer": "R-CNN-style per-proposal CNN",
            "seconds": round(seconds["fast"], 3), "peer_seconds": round(seconds["rcnn"], 3),
            "proposals_per_image": round(k, 1), "profile": profile, "load": load()}


def bench_proposals(profile: str, p: dict, seed: int) -> list[dict]:
    from course_utils.ops.proposals import proposal_recall, selective_search

    n = {"ci": 4, "cpu": 16, "gpu": 32}[profile]
    scenes = render_scenes(SceneConfig(size=p["size"], max_things=p["max_things"]), range(n), seed=20_000 + seed)
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
                    "recall_0.7": round(recall_70, 4), "images": n, "seconds": round(seconds * n, 2), "seconds_per_image": round(seconds, 4),
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
    print(f"selective search (OpenCV fast): recall@0.5 {cv_recall:.3f}, @0.7 {cv_recall_70:.3f}, {cv_per_image:.0f} proposals/image, "
          f"{cv_seconds:.3f} s/image")
    results.append({"lab": "05", "name": "proposals vs OpenCV", "metric": "speed vs OpenCV selective search (x)",
                    "value": round(cv_seconds / seconds, 3), "peer": "cv2.ximgproc selective search (fast)",
                    "seconds": round(seconds * n, 2), "peer_seconds": round(cv_seconds * n, 2),
                    "recall": round(float(recall), 4), "peer_recall": round(float(cv_recall), 4),
                    "peer_recall_0.7": round(cv_recall_70, 4),
                    "peer_proposals_per_image": round(cv_per_image, 1), "profile": profile})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=0, help="also evaluate every n steps")
    parser.add_argument("--skip-proposals", action="store_true")
    parser.add_argument("--skip-detector", action="store_true")
    parser.add_argument("--save", default=None, help="save the trained detector's state_dict to this file")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override profile settings")
    args = parser.parse_args(argv)
    device = get_device()
    profile = args.profile or profile_name(device)
    p = dict(PROFILES[profile])
    for item in args.set:
        key, value = item.split("=")
        p[key] = value if isinstance(p[key], str) else type(p[key])(value)
    results = []
    if not args.skip_detector:
        results.append(bench_detector(profile, p, device, args.seed, args.eval_every, args.save))
    if not args.skip_proposals:
        results += bench_proposals(profile, p, args.seed)
    for result in results:
        print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
