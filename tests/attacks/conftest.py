"""The attack suite (tests/attacks/): attacks grouped by class, each through the public interface.

Kept small on purpose: several classes of attacks live here side by side.  The demo county
template is shared with the gateway tests (built once per session); each file sets up its own
stage from it (the DP files through ``tests.attacks.dp_lab``).
"""

from __future__ import annotations

from tests.privacy_gateway.conftest import demo_template

__all__ = ["demo_template"]
