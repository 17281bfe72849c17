from handwritten import make_app

app = make_app("no_router", router=None)
