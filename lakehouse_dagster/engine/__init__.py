"""The engine seam: the only code that knows how Spark sessions are made.

- ``settings``: what the deployment says about the engine (no heavy imports).
- ``sessions``: open a session on an embedded Sail server or a Spark Connect URL.
- ``resource``: the Dagster resource around ``sessions``.
"""
