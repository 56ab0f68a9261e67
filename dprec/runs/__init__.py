"""Run directories: atomic files, the run writer, checkpoints, TensorBoard events and the
workdir lock."""
