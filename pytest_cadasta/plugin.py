"""pytest hooks and fixtures of pytest-cadasta."""
