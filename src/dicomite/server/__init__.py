"""The HTTP server behind ``dicomite serve``: granian, configured through its public API only.

granian (Rust, hyper) runs the ASGI app in worker processes that share the listening socket,
terminates TLS, and enforces the HTTP/1.1 limits a public service needs: request headers larger
than ``http_max_header_bytes`` are answered 431 (RFC 6585 §5) and a client that has not sent a
whole request head within ``http_header_read_timeout_seconds`` is disconnected (slowloris). It
sends whole files with the ASGI ``http.response.pathsend`` extension, which Starlette's
``FileResponse`` uses. The ASGI scope's ``client`` is the socket peer: no proxy header rewrites
it, the app decides which forwarders to believe (``Settings.forwarded_allow_ips``).
"""

from dicomite.server.serving import build_server, serve

__all__ = ["build_server", "serve"]
