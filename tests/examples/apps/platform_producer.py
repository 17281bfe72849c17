from cadasta_platform import make_platform_app

app = make_platform_app("platform_producer")
