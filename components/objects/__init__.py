"""The object-type classifier: train, evaluate and push a CNN on instance crops."""
