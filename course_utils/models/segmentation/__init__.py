"""Segmentation networks trained from scratch on synthetic scenes (lab 02).

- ``fcn``: a VGG-like backbone, FCN-32s / 16s / 8s (Long, Shelhamer & Darrell, CVPR 2015) and the
  bilinear-initialised transposed convolution they upsample with.
- ``unet``: a small U-Net (Ronneberger, Fischer & Brox, 2015), the encoder-decoder family.
"""

from course_utils.models.segmentation.fcn import FCN, Backbone, BilinearUpsample, bilinear_kernel
from course_utils.models.segmentation.unet import UNet

__all__ = ["FCN", "Backbone", "BilinearUpsample", "UNet", "bilinear_kernel"]
