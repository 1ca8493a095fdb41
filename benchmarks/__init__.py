"""Side-by-side benchmarks of forklift against joblib and the stdlib (``make bench``)."""
