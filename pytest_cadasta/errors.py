"""Errors of the plugin's own infrastructure (not of the app under test)."""


class InfrastructureError(RuntimeError):
    """SQS, PostgreSQL or the in-process worker could not be provided."""
