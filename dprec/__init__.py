"""dprec: denoising recommenders trained on noisy implicit feedback (DPI and DVAE) in JAX/Flax."""

__version__ = "0.1.0"
