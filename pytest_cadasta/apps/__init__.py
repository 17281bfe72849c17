"""The user's apps: loading them, wiring them to the run's services, and the
probe tasks, routes and sends the checks use."""
