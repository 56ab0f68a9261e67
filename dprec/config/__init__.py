"""The config boundary, without JAX: presets, the ConfigDict → `RunSpec` check, and the text of
`--help` and `--config_help`."""
