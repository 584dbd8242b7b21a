"""A tiny HTTPS server on 127.0.0.1 for the TLS tests.

    https_server.py CERT KEY     serves CERT (and its KEY) for its whole life
    https_server.py --rotating PEM
                                 PEM holds the certificate and its key; each connection is served
                                 with PEM as it is when accepted, so replacing PEM (by rename: one
                                 file, so certificate and key always match) rotates the
                                 certificate without a restart or a new port

Prints "ready PORT" once it accepts connections; answers every GET with 200 "hello over tls".
Handshakes that fail (a client that does not trust the certificate) are dropped quietly.
"""

import http.server
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello over tls\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Rotating(http.server.ThreadingHTTPServer):
    daemon_threads = True
    pem = ""

    def get_request(self):
        sock, address = self.socket.accept()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pem)
        # The handshake happens in the handler's thread: a client that hangs it blocks no one.
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request, client_address):
        pass


def main():
    if sys.argv[1] == "--rotating":
        server = Rotating(("127.0.0.1", 0), Handler)
        server.pem = sys.argv[2]
    else:
        cert, key = sys.argv[1], sys.argv[2]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("ready", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
