from handwritten import make_app

# The router declares the monitor on each connection, not the task's own queue:
# the monitor gets its copy, the work queue nothing.
app = make_app("declares_only_the_monitor", router="monitor_only")
