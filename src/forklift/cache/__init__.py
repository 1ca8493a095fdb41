"""Memory: disk caching of function results.

A cached call: function identity + code fingerprint (:mod:`.identity`) + hashed arguments
(:mod:`.keys`) -> call id -> store look-up (:mod:`.stores`) -> compute on a miss, with one
computation per key across threads and processes (:mod:`.stores.locks`) -> atomic store write
-> result. Size limits and expiry are policies (:mod:`.policies`).

``cache`` never imports ``parallel`` (nor the other way round).
"""
