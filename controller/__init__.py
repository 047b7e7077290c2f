"""evedge: a site-local EV charging controller."""

__version__ = "0.1.0"
"""The release; CHANGELOG.md has one section per version, newest first."""
