"""Per-example pure losses on logits (log space), reduced by the caller."""
