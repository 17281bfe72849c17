"""pytest-cadasta: conformance checks for Cadasta platform Celery workers."""
