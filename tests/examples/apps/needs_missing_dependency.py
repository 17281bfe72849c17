import cadasta_no_such_dependency  # noqa: F401
import celery  # noqa: F401

app = None
