"""Simulated OCPP devices for tests and the demo: independent implementations, run as separate processes."""
