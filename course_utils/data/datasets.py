"""``torch.utils.data`` views of the synthetic scenes, in torchvision's detection convention."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from course_utils import validation
from course_utils.data.scenes import SceneConfig, Scenes, render_scenes


class SceneDataset(Dataset):
    """``n`` synthetic scenes; item ``i`` is ``(image, target)``.

    ``image`` is ``3 x H x W`` float32 in [0, 1]; ``target`` has ``boxes`` (``N x 4`` float32, XYXY),
    ``labels`` (``N`` int64, 1..T), ``masks`` (``N x H x W`` uint8), ``semantic`` (``H x W`` int64),
    ``panoptic`` (``H x W x 2`` int64) and ``image_id`` (int64). Scenes are rendered in chunks of
    ``chunk`` on ``device`` the first time they are needed, and kept (set ``cache=False`` to render
    every time, e.g. for endless data). The same ``(seed, i)`` always gives the same scene.
    """

    def __init__(self, n: int, config: SceneConfig | None = None, seed: int = 0,
                 device: torch.device | str = "cpu", chunk: int = 64, cache: bool = True):
        validation.int_at_least("n", n, 1, " (number of scenes)")
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.n, self.config, self.seed = n, config or SceneConfig(), seed
        self.device, self.chunk, self.cache = torch.device(device), chunk, cache
        self._chunks: dict[int, Scenes] = {}

    def __len__(self) -> int:
        return self.n

    def _scenes(self, c: int) -> Scenes:
        if c in self._chunks:
            return self._chunks[c]
        scenes = render_scenes(self.config, range(c * self.chunk, min(self.n, (c + 1) * self.chunk)),
                               self.seed, self.device)
        if self.cache:
            self._chunks[c] = scenes
        return scenes

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not -self.n <= i < self.n:
            raise IndexError(f"scene index {i} out of range for a dataset of {self.n}")
        i %= self.n
        scenes = self._scenes(i // self.chunk)
        j = i % self.chunk
        target = scenes.target(j)
        target["image_id"] = torch.tensor(i)
        return scenes.images[j], target

    def batch(self, indices: list[int] | range) -> Scenes:
        """Render these scenes together (fast path for training on a GPU; not cached)."""
        for i in indices:
            if not 0 <= i < self.n:
                raise IndexError(f"scene index {i} out of range for a dataset of {self.n}")
        return render_scenes(self.config, indices, self.seed, self.device)


def collate_detection(batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """For torchvision detection models: ``(list of images, list of targets)``."""
    images, targets = zip(*batch)
    return list(images), list(targets)


def collate_segmentation(batch: list[tuple[torch.Tensor, dict]]) -> tuple[torch.Tensor, torch.Tensor]:
    """For semantic segmentation: images ``B x 3 x H x W`` and masks ``B x H x W`` (int64)."""
    images, targets = zip(*batch)
    sizes = {tuple(im.shape) for im in images}
    if len(sizes) > 1:
        raise ValueError(f"cannot stack images of different sizes {sorted(sizes)}; resize them or use batch size 1")
    return torch.stack(images), torch.stack([t["semantic"] for t in targets])
