"""wsconform: a WebSocket conformance and interop test harness."""

__version__ = "0.1.0"
