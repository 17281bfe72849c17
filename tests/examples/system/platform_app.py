"""The platform: it sends tasks by name and runs none."""

from system_base import make_app

app = make_app("platform")
