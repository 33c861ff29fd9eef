"""The privacy gateway's demo-county fixtures (a tiny demo built once, copied per test)."""

from tests.privacy_gateway.conftest import demo_lab, demo_template

__all__ = ["demo_lab", "demo_template"]
