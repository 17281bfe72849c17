from handwritten import make_app

app = make_app("handwritten_ok")
