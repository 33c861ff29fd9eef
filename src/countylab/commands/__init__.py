"""CLI command groups by capability; each module's ``register(app)`` adds its commands.

Commands that act on the lab's own data directory (``init``, ``user add``…) live in
``countylab.cli``, which imports each group here by name; commands that talk to a (possibly
remote) lab over its API with a token (``dataset``, ``query``, ``job``…) live here and use
``commands.remote.client``.
"""
