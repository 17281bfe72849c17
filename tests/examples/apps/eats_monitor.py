from handwritten import make_app

app = make_app("eats_monitor", protect_monitor=False)
