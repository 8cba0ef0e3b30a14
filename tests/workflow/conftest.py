"""The live-app fixtures (an app whose requests really commit) for race tests."""

from tests.workflow.live import http, live

__all__ = ["http", "live"]
