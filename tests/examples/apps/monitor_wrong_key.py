from handwritten import make_app

app = make_app("monitor_wrong_key", platform_key="platform")
