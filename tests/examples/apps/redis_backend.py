from handwritten import make_app

app = make_app("redis_backend", result_backend="redis://:s3cret@cache.internal:6379/0")
