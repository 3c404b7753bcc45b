"""The networks of the labs, by task: ``segmentation`` (FCN, U-Net; lab 02) and ``detection``
(R-CNN family from lab 05 on). The segmentation models are importable from here too
(``from course_utils.models import FCN``)."""

from course_utils.models.segmentation import FCN, Backbone, BilinearUpsample, UNet, bilinear_kernel

__all__ = ["FCN", "Backbone", "BilinearUpsample", "UNet", "bilinear_kernel"]
