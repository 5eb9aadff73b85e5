"""TCP ports on 127.0.0.1: is one taken, and which ones are free."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def port_free(port: int) -> bool:
    """True when nothing listens on ``127.0.0.1:port`` and it can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(count: int, avoid: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """``count`` distinct free ports (held open together while chosen, so never twice)."""
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
            if port not in avoid and port + 10000 <= 65535:
                ports.append(port)
    finally:
        for sock in sockets:
            sock.close()
    return ports


def answers_http(url: str, timeout: float = 1.0) -> int | None:
    """The HTTP status ``url`` answers with, or None when nothing answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None
