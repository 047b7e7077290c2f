"""Upstream notifications: what the platform is told, and its durable delivery."""
