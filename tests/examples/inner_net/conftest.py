"""Records every connection this process opens, or name it resolves, that is
not loopback; loaded before the plugin imports the app under test."""

import ipaddress
import json
import sys

LEFT_LOOPBACK = []
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host):
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def audit(event, args):
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not is_loopback(str(address[0])):
            LEFT_LOOPBACK.append(f"connect {address[0]}:{address[1]}")
    elif event == "socket.getaddrinfo":
        host = args[0]
        if isinstance(host, bytes):
            host = host.decode()
        if host is not None and not is_loopback(str(host)):
            LEFT_LOOPBACK.append(f"resolve {host}")


sys.addaudithook(audit)


def pytest_unconfigure(config):
    with open("left_loopback.json", "w") as f:
        json.dump(LEFT_LOOPBACK, f)
