"""Small segmentation networks for the labs (trained from scratch on synthetic scenes).

- ``fcn``: a VGG-like backbone, FCN-32s / 16s / 8s (Long, Shelhamer & Darrell, CVPR 2015) and the
  bilinear-initialised transposed convolution they upsample with.
- ``unet``: a small U-Net (Ronneberger, Fischer & Brox, 2015), the encoder-decoder family.
- ``evaluate``: predictions and pixel accuracy / mIoU over a set of images.
"""

from course_utils.models.fcn import FCN, Backbone, BilinearUpsample, bilinear_kernel
from course_utils.models.unet import UNet

__all__ = ["FCN", "Backbone", "BilinearUpsample", "UNet", "bilinear_kernel"]
