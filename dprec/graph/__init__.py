"""The training interaction graph: normalised edges (host) and sparse propagation (device)."""
