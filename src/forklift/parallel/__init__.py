"""The engine (dispatch, batching, ordering, abort) and Parallel/delayed on top of it.

``parallel`` never imports ``cache``; backends never import the engine.
"""
