"""The REST API on the site LAN."""
