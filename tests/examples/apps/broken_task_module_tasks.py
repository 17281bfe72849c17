import cadasta_not_installed  # noqa: F401
