"""Planted-noise worlds, one module each: `block` (the easy case), `latent` (continuous tastes)
and `real` (noise planted into real interactions). `dprec.data.planted` is the public entry."""
