"""The project steps and shared modules: `cityseg.components.X` is `components/X.py`."""
