"""Benchmark: course_utils k-means vs scikit-learn's KMeans, and lab 01's quality target.

Same data (a 1-megapixel RGB image: skimage's astronaut at 1024 x 1024), same k, same initial centres
(k-means++ from a fixed seed), same tolerance, Lloyd's algorithm on both sides. Prints the best of
``--repeats`` wall times, the ratio (scikit-learn time / ours: > 1 means we are faster) and the relative
inertia difference; ``first``: our first fit, which on CPU includes compiling the loop for that k
(``course_utils.ops.kmeans.COMPILE_MIN_WORK``: a few seconds without torch's disk cache, about one with it);
then the lab's quality figure (mIoU on the noisy three-intensity image, target 0.95).

Usage: python bench/kmeans.py [--ks 4 8 16 32] [--repeats 3] [--threads N]

Machine-readable lines start with ``RESULT `` followed by JSON (collected by bench/run_all.py).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from sklearn.cluster import KMeans

from course_utils import get_profile
from course_utils.data import load_image, three_intensity_image
from course_utils.evaluation import segmentation as metrics
from course_utils.ops import kmeans as K
from course_utils.ops.features import pixel_features


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_best(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels (1024 -> 1 megapixel)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    P = get_profile()
    device = P.device
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device {device}, profile {P.name}, torch threads {torch.get_num_threads()}, load average {load:.2f}")

    image = load_image("astronaut", rgb=True, size=args.size)
    x = pixel_features(image, "rgb").contiguous()
    x_np = x.numpy()
    x_dev = x.to(device)
    print(f"data: {x.shape[0]} pixels x {x.shape[1]} features")
    print(f"{'k':>3} {'ours ms':>9} {'sklearn ms':>11} {'ratio':>6} {'iters':>9} {'inertia diff':>13} "
          f"{'first ms':>9} {'compiled':>8}")
    for k in args.ks:
        init = K.kmeans_plus_plus(x, k, torch.Generator().manual_seed(0))

        def ours(init=init):
            result = K.kmeans(x_dev, init=init.to(device), max_iter=300, tol=1e-4)
            synchronize(device)
            return result

        def theirs(k=k, init=init):
            return KMeans(k, init=init.numpy(), n_init=1, max_iter=300, tol=1e-4, algorithm="lloyd").fit(x_np)

        start = time.perf_counter()
        ours()  # warm-up (allocations, CUDA context, compiling)
        first = time.perf_counter() - start
        compiled = K._can_compile(x_dev.T, k)
        t_ours, r_ours = time_best(ours, args.repeats)
        t_sk, r_sk = time_best(theirs, args.repeats)
        diff = (r_ours.inertia - r_sk.inertia_) / r_sk.inertia_
        ratio = t_sk / t_ours
        print(f"{k:>3} {t_ours * 1000:>9.0f} {t_sk * 1000:>11.0f} {ratio:>6.2f} "
              f"{r_ours.n_iter:>4}/{r_sk.n_iter_:<4} {diff:>+13.2e} {first * 1000:>9.0f} "
              f"{'yes' if compiled else 'no':>8}")
        print("RESULT " + json.dumps({
            "lab": "01", "name": f"kmeans_k{k}", "metric": "speed vs scikit-learn (x)", "value": round(ratio, 3),
            "seconds": round(t_ours, 4), "peer": "scikit-learn KMeans (lloyd)", "peer_seconds": round(t_sk, 4),
            "inertia_rel_diff": diff, "iterations": r_ours.n_iter, "first_fit_seconds": round(first, 2),
            "compiled": compiled, "profile": P.name, "device": str(device),
            "threads": torch.get_num_threads(), "load": round(load, 2)}))

    start = time.perf_counter()
    toy, truth = three_intensity_image(size=128, noise=0.08, seed=0)
    result = K.kmeans(pixel_features(toy.to(device), "intensity"), 3,
                      generator=torch.Generator(device=device).manual_seed(0))
    labels = result.labels.cpu()
    mapping = metrics.match_clusters(labels, truth.reshape(-1), 3, 3)
    miou = metrics.mean_iou(mapping[labels].reshape(truth.shape), truth, 3)
    seconds = time.perf_counter() - start
    print(f"lab 01 quality: mIoU {miou:.3f} on the noisy three-intensity image (target 0.95), {seconds * 1000:.0f} ms")
    print("RESULT " + json.dumps({"lab": "01", "name": "toy_miou", "metric": "mIoU", "value": round(miou, 4),
                                  "target": 0.95, "seconds": round(seconds, 4), "profile": P.name,
                                  "device": str(device)}))


if __name__ == "__main__":
    main()
