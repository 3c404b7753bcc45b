"""Pretrained torchvision weights, only when they are already on this machine: the course never downloads.

    state = coco_mask_rcnn_weights()          # None, with a message saying how to get them, if not cached
    if state is not None:
        model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)
        model.load_state_dict(state)

torchvision keeps downloaded weights in the torch hub cache, ``<torch.hub.get_dir()>/checkpoints/<file>``
(``$TORCH_HOME/hub``, by default ``~/.cache/torch/hub``); these functions look there and nowhere else.
"""

from __future__ import annotations

from pathlib import Path

import torch


def cached_weights_path(weights: object) -> Path:
    """Where torchvision caches the file of ``weights`` (a torchvision ``WeightsEnum`` member)."""
    url = getattr(weights, "url", None)
    if not isinstance(url, str):
        raise TypeError("weights must be a torchvision weights enum member, e.g. "
                        f"MaskRCNN_ResNet50_FPN_Weights.COCO_V1, got {type(weights).__name__}")
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def cached_weights(weights: object, verbose: bool = True) -> dict[str, torch.Tensor] | None:
    """The state dict of ``weights`` if its file is in the torch hub cache, else ``None`` (with a message
    naming the file and the command that downloads it, when ``verbose``). Never downloads."""
    path = cached_weights_path(weights)
    if not path.is_file():
        if verbose:
            name = f"{type(weights).__name__}.{getattr(weights, 'name', '?')}"
            size = getattr(weights, "meta", {}).get("_file_size")
            print(f"pretrained weights {name} not in the torch cache ({path}): skipped. To get them once"
                  + (f" ({size:.0f} MB)" if size else "") + ", with internet access: python -c \"import torchvision; "
                  f"torchvision.models.get_weight('{name}').get_state_dict()\"")
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def coco_mask_rcnn_weights(verbose: bool = True) -> dict[str, torch.Tensor] | None:
    """torchvision's COCO-trained ``maskrcnn_resnet50_fpn`` weights (``MaskRCNN_ResNet50_FPN_Weights.COCO_V1``)
    from the torch hub cache, or ``None`` when they are not there (see :func:`cached_weights`)."""
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    return cached_weights(MaskRCNN_ResNet50_FPN_Weights.COCO_V1, verbose)


__all__ = ["cached_weights", "cached_weights_path", "coco_mask_rcnn_weights"]
