"""REST API tests (a package: tests/upstream has a test module of the same name)."""
