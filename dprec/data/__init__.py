"""Host-side data layer (NumPy/pandas, no JAX): loading, splits, clean test, sampling, batches."""
