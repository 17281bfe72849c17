from handwritten import make_app

app = make_app("direct_exchange", exchange_type="direct")
