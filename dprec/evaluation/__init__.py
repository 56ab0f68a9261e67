"""Evaluation: full-ranking top-K per chunk of users (`ranking`), a run's views (`views`: valid,
test, warm, cold, popularity) and the noise scores of training interactions (`noise_scores`)."""
