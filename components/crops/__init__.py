"""The crops step: object crops of the Cityscapes "things" classes as TFRecord shards."""
