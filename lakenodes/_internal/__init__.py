"""Small helpers every layer may use: datetimes, SQL text, the registry of process-wide caches.

Nothing here imports another lakenodes module except :mod:`lakenodes.errors`.
"""
