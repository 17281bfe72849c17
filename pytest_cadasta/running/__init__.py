"""One run of the checks: its infrastructure, the harness around each app, and
the state each app's and the system's checks read."""
