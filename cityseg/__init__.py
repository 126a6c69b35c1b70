"""cityseg: a Kubeflow pipeline that trains, evaluates and ships Cityscapes segmentation models.

`cityseg.components.X` is `components/X.py` (the steps and shared modules), `cityseg.pipelines.X`
is `pipelines/X.py` (the DAGs and how they run); this package holds only the command-line entry.
"""

import importlib.metadata

__version__ = importlib.metadata.version("cityseg")
