"""Many runs at once: the grid launcher, the tuner and the planted-noise benchmark."""
