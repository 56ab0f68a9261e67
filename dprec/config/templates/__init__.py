"""The config entry files shipped with the package (`get_config(arg)` each).

`configs/default.py` and `configs/tiny.py` of a checkout load these; the sweep tools find them
by name when a `--config configs/NAME.py` file is not in the current directory (a
non-editable install has no `configs/` folder).
"""
