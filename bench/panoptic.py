"""Lab 08: lab 02's FCN-8s (stuff) and lab 07's Mask R-CNN (things) merged by Panoptic FPN's heuristic, scored by
panoptic quality (COCO's panopticapi rules, ``course_utils.evaluation.panoptic``) on held-out scenes.

    python bench/panoptic.py --profile cpu                 # ci | cpu | gpu (default: the course's profile)
    python bench/panoptic.py --set score_threshold=0.3     # override the merge's settings (experiments)
    python bench/panoptic.py --folder trained              # where labs 02 and 07 saved their models

The models are loaded from ``--folder`` when labs 02 and 07 saved them there, trained (and saved) otherwise, as
the lab does (``course_utils/training/recipes/panoptic.py``). Targets: PQ >= 0.70 (cpu), >= 0.80 (gpu). Prints
``RESULT {...json...}`` lines (protocol: bench/run_all.py): PQ, SQ and RQ of the pipeline, and our metric's speed
against torchmetrics' ``PanopticQuality`` on the same maps (a peer row; their PQ and the gap are in its details).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torchmetrics.detection  # noqa: F401  (imported before the timings)

from course_utils.config import Profile, get_device, profile_name
from course_utils.evaluation.panoptic import (
    VOID,
    panoptic_quality,
    torchmetrics_panoptic_quality,
)
from course_utils.ops.panoptic import merge_panoptic
from course_utils.training.recipes import with_overrides
from course_utils.training.recipes.panoptic import (
    PANOPTIC,
    held_out_scenes,
    instance_predictions,
    panoptic_predictions,
    semantic_prediction,
    trained_models,
)


def load() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PANOPTIC), default=None)
    parser.add_argument("--seed", type=int, default=0, help="held-out scenes: seed 20_000 + seed")
    parser.add_argument("--folder", default="trained", help="where labs 02 and 07 saved their models")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override the lab 08 recipe")
    args = parser.parse_args(argv)
    device = get_device()
    name = args.profile or profile_name(device)
    profile = Profile(name, device)
    r = with_overrides(PANOPTIC[name], args.set)
    load_start, start = load(), time.perf_counter()
    fcn8s, mask_rcnn = trained_models(profile, args.folder, progress=sys.stderr.isatty())
    models_seconds = time.perf_counter() - start

    tick = time.perf_counter()
    scenes = held_out_scenes(profile, r.n_val, args.seed)
    semantic = semantic_prediction(fcn8s, scenes.images, profile)
    instances = instance_predictions(mask_rcnn, scenes.images, scenes.config, r.mask_threshold)
    preds = panoptic_predictions(semantic, instances, scenes.config.thing_ids, merge_panoptic,
                                 score_threshold=r.score_threshold, overlap_threshold=r.overlap_threshold)
    pipeline_seconds = time.perf_counter() - tick
    things, stuffs = scenes.config.thing_ids, tuple(range(len(scenes.config.stuff)))
    tick = time.perf_counter()
    ours = panoptic_quality(preds, scenes.panoptic, things, stuffs)
    our_seconds = time.perf_counter() - tick
    tick = time.perf_counter()
    theirs = torchmetrics_panoptic_quality(preds, scenes.panoptic, things, stuffs)
    their_seconds = time.perf_counter() - tick
    void = float((preds[..., 0] == VOID).float().mean())

    print(f"lab 08, profile {name} on {device}: models ready in {models_seconds:.1f} s; {len(scenes)} held-out "
          f"scenes of {scenes.config.size} px predicted and merged in {pipeline_seconds:.1f} s ({void:.1%} of the "
          f"pixels void); load {load_start} -> {load()}")
    print(f"{'category':10s} {'PQ':>6s} {'SQ':>6s} {'RQ':>6s} {'TP':>5s} {'FP':>5s} {'FN':>5s}")
    for c, row in ours["per_class"].items():
        print(f"{scenes.config.categories[c]:10s} {row['pq']:6.3f} {row['sq']:6.3f} {row['rq']:6.3f} {row['tp']:5d} "
              f"{row['fp']:5d} {row['fn']:5d}")
    print(f"PQ {ours['pq']:.4f} (things {ours['pq_th']:.4f}, stuff {ours['pq_st']:.4f}), SQ {ours['sq']:.4f}, RQ "
          f"{ours['rq']:.4f}; torchmetrics (lenient on predicted void) PQ {theirs['pq']:.4f}; our metric "
          f"{our_seconds:.2f} s, torchmetrics {their_seconds:.2f} s")
    if r.target is not None:
        print(f"target PQ >= {r.target:.2f}: {'reached' if ours['pq'] >= r.target else 'NOT reached'}")

    common = {"lab": "08", "profile": name, "device": str(device), "n_scenes": len(scenes),
              "models_seconds": round(models_seconds, 1), "load": [load_start, load()]}
    results = [
        {**common, "name": "panoptic PQ", "metric": "PQ", "value": round(ours["pq"], 4), "target": r.target,
         "seconds": round(pipeline_seconds + our_seconds, 1), "pq_things": round(ours["pq_th"], 4),
         "pq_stuff": round(ours["pq_st"], 4), "void_fraction": round(void, 4),
         "per_class_pq": {scenes.config.categories[c]: round(row["pq"], 4) for c, row in ours["per_class"].items()},
         "settings": {k: getattr(r, k) for k in ("n_val", "score_threshold", "overlap_threshold", "mask_threshold")}},
        {**common, "name": "panoptic SQ", "metric": "SQ", "value": round(ours["sq"], 4), "target": None},
        {**common, "name": "panoptic RQ", "metric": "RQ", "value": round(ours["rq"], 4), "target": None},
        {**common, "name": "PQ metric vs torchmetrics", "metric": "speed vs torchmetrics PanopticQuality (x)",
         "value": round(their_seconds / our_seconds, 2), "peer": "torchmetrics PanopticQuality",
         "peer_seconds": round(their_seconds, 3), "seconds": round(our_seconds, 3),
         "torchmetrics_pq": round(theirs["pq"], 4), "pq_gap": round(theirs["pq"] - ours["pq"], 4)},
    ]
    for result in results:
        print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
