"""The scikit-image sample images that load with no network, as float tensors in [0, 1]."""

from __future__ import annotations

import numpy as np
import torch

from course_utils import validation

# These ship inside scikit-image; the others (brain, cells3d, eagle, ...) are downloaded on first use.
OFFLINE_IMAGES = (
    "astronaut", "binary_blobs", "brick", "camera", "cat", "cell", "checkerboard", "chelsea", "clock",
    "coffee", "coins", "colorwheel", "grass", "gravel", "horse", "hubble_deep_field",
    "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina", "rocket",
    "shepp_logan_phantom", "text",
)


def load_image(name: str, rgb: bool = False, size: int | None = None) -> torch.Tensor:
    """Load ``skimage.data.<name>()`` as a float32 tensor ``C x H x W`` with values in [0, 1].

    Args:
        name: one of :data:`OFFLINE_IMAGES`.
        rgb: if True, grey images are repeated to 3 channels and an alpha channel is dropped;
            if False, the image keeps its own channels (1 for grey, 3 for colour).
        size: if given, the shorter side is resized to ``size`` pixels (bilinear, antialiased).
    """
    import skimage.data

    if name not in OFFLINE_IMAGES:
        raise ValueError(f"unknown or online-only image {name!r}; choose one of: {', '.join(OFFLINE_IMAGES)}")
    array = np.asarray(getattr(skimage.data, name)())
    if array.dtype == bool:
        image = torch.from_numpy(array.astype(np.float32))
    elif np.issubdtype(array.dtype, np.integer):
        image = torch.from_numpy(array.astype(np.float32) / np.iinfo(array.dtype).max)
    else:
        image = torch.from_numpy(array.astype(np.float32))
        image = (image - image.min()) / (image.max() - image.min()).clamp(min=1e-12)
    image = image[None] if image.ndim == 2 else image.permute(2, 0, 1)
    if image.shape[0] == 4:
        image = image[:3]
    if rgb and image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    if size is not None:
        validation.positive_int("size", size)
        h, w = image.shape[1:]
        scale = size / min(h, w)
        new = (max(1, round(h * scale)), max(1, round(w * scale)))
        image = torch.nn.functional.interpolate(image[None], size=new, mode="bilinear",
                                                antialias=True, align_corners=False)[0].clamp(0, 1)
    return image.contiguous()
