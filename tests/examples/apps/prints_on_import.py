"""A conforming app that talks while imported, on both streams (as many do)."""

import sys

from toolbox_app import app  # noqa: F401

print("prints_on_import: connecting to the broker")
print("prints_on_import: warning, no SENTRY_DSN", file=sys.stderr)
