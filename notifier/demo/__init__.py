"""A ModernGov-compatible demo of several councils, served locally so the whole flow runs without internet."""

from notifier.demo.data import DEMO_COUNCILS, DemoCouncilInfo
from notifier.demo.server import create_demo_app, start_demo_server
from notifier.demo.timeline import Change, DemoCouncils, DemoState

__all__ = [
    "DEMO_COUNCILS",
    "Change",
    "DemoCouncilInfo",
    "DemoCouncils",
    "DemoState",
    "create_demo_app",
    "start_demo_server",
]
