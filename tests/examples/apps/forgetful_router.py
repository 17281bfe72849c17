from handwritten import make_app

app = make_app("forgetful_router", router="forgetful")
