"""The object classifier as a trainer of the train step's launcher: one process, local workers or a TFJob.

`cityseg.components.train.launch.train_model(config, launch, TRAINER)` trains an ObjectsTrainConfig
as the segmentation step trains its own: its TFJob is `cityseg-objects-<run id>`, its pods run
`cityseg objects train ...` (`cli.train_argv`) in the train image, and with a checkpoint root
they write to `<checkpoint_root>/<run id>/objects`.
"""

from cityseg.components.objects.cli import train_argv
from cityseg.components.objects.train import train
from cityseg.components.train.launch import Trainer

TRAINER = Trainer(name="objects", folder="objects", train=train, argv=train_argv)
