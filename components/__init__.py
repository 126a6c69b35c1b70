"""cityseg: a Kubeflow pipeline that trains, evaluates and ships Cityscapes segmentation models."""

__version__ = "0.1.0"
