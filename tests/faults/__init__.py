"""What the controller survives (issue: reliability and security); see the README table."""
