"""A tiny synthetic run for smoke tests (a few seconds): 300 users, 80 items, 3 epochs."""

from dprec.config.templates.tiny import get_config

__all__ = ["get_config"]
