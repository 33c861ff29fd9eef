"""Client methods of the compute center (sandbox jobs, dummy data).

A mixin of :class:`countylab_client.Client`: methods reach the server through ``self._send``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class JobsAPI:
    _send: Callable[..., Any]  # provided by Client
