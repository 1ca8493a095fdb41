"""Bridges from other libraries into forklift (top layer, beside cli).

Each module here imports its library lazily - only when the bridge is used - so that
``import forklift`` never imports them. :mod:`.joblib` lets joblib (and so scikit-learn's
``n_jobs``) run on forklift's backends.
"""
