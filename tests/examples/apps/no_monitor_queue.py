from handwritten import make_app

app = make_app("no_monitor_queue", with_platform=False)
