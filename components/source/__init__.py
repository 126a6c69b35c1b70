"""The source step: checks a given Cityscapes source before the data steps read it."""
