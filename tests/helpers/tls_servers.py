"""The TLS peers of the client matrix (tests/helpers/client_matrix.py), in one process:

    tls_servers.py CERT KEY

CERT is a server certificate (SAN 127.0.0.1 and localhost) issued by a test CA, KEY its key. On
127.0.0.1, each on an ephemeral port, it serves over TLS:

  https      HTTP/1.1. GET / answers JSON {"server": "vardr-probe", ...} (which elastic-transport
             takes as a response body), or, to a request signed the AWS way (botocore's
             list_buckets), an S3 ListAllMyBucketsResult naming the bucket "vardr-probe"; and
             /simple/vardr-probe/ with the wheel it links to, a package index for pip.
  wss        a WebSocket echo (the websockets library).
  grpc       gRPC: /vardr.Probe/Echo echoes its request's bytes (a generic handler: no protoc).
  mongodb    enough of the MongoDB wire protocol for pymongo: hello / legacy isMaster over OP_QUERY
             or OP_MSG, and ok to every other command (ping, endSessions).

Prints one line `ready {"https": PORT, "wss": PORT, "grpc": PORT, "mongodb": PORT}` on stdout
once all four listen, then serves until killed. Handshakes that fail (a client that does not
trust the certificate) are dropped quietly: that is what the matrix's baseline is made of.
Needs the test venv (websockets, grpcio, and pymongo's bson).
"""

import asyncio
import base64
import datetime
import hashlib
import http.server
import io
import json
import logging
import ssl
import struct
import sys
import threading
import zipfile
from concurrent import futures

import bson
import grpc
from websockets.asyncio.server import serve as websocket_serve

HOST = "127.0.0.1"
NAME = "vardr-probe"
S3_LIST = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    "<Owner><ID>vardr</ID><DisplayName>vardr</DisplayName></Owner>"
    f"<Buckets><Bucket><Name>{NAME}</Name>"
    "<CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets>"
    "</ListAllMyBucketsResult>"
).encode()


def server_context(cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


# --- HTTPS ---------------------------------------------------------------------------------------


def probe_wheel():
    """A minimal valid wheel, vardr_probe-1.0-py3-none-any.whl (pip download checks its metadata)."""
    files = {
        "vardr_probe/__init__.py": b"",
        "vardr_probe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: vardr-probe\nVersion: 1.0\n",
        "vardr_probe-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: vardr\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("vardr_probe-1.0.dist-info/RECORD,,")
    files["vardr_probe-1.0.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


WHEEL_NAME = "vardr_probe-1.0-py3-none-any.whl"
WHEEL = probe_wheel()
INDEX = (
    f'<!DOCTYPE html><html><body><a href="/files/{WHEEL_NAME}#sha256='
    f'{hashlib.sha256(WHEEL).hexdigest()}">{WHEEL_NAME}</a></body></html>'
).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/" and self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256"):
            self.answer(200, "application/xml", S3_LIST)
        elif path in ("/", "/v1/balance"):
            body = {"server": NAME, "object": "balance", "path": path}
            self.answer(200, "application/json", json.dumps(body).encode(), elastic=True)
        elif path.rstrip("/") == "/simple/vardr-probe":
            self.answer(200, "text/html", INDEX)
        elif path == f"/files/{WHEEL_NAME}":
            self.answer(200, "application/octet-stream", WHEEL)
        else:
            self.answer(404, "application/json", b'{"error": "not found"}')

    def answer(self, code, content_type, body, elastic=False):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if elastic:
            self.send_header("X-Elastic-Product", "Elasticsearch")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class HttpsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    context = None

    def get_request(self):
        sock, address = self.socket.accept()
        # The handshake happens in the handler's thread: a client that hangs it blocks no one.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request, client_address):
        pass  # a refused handshake, or a client gone


def start_https(context):
    server = HttpsServer((HOST, 0), Handler)
    server.context = context
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


# --- gRPC ----------------------------------------------------------------------------------------


def start_grpc(cert, key):
    with open(cert, "rb") as c, open(key, "rb") as k:
        credentials = grpc.ssl_server_credentials([(k.read(), c.read())])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    # No serializers: the method takes and gives bytes, so no generated code is needed.
    echo = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("vardr.Probe", {"Echo": echo})])
    port = server.add_secure_port(f"{HOST}:0", credentials)
    server.start()
    return server, port


# --- MongoDB wire protocol -----------------------------------------------------------------------

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
MORE_TO_COME = 1 << 1
CHECKSUM_PRESENT = 1


def hello_reply():
    return {
        "helloOk": True,
        "isWritablePrimary": True,
        "ismaster": True,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": 48_000_000,
        "maxWriteBatchSize": 100_000,
        "localTime": datetime.datetime.now(datetime.timezone.utc),
        "logicalSessionTimeoutMinutes": 30,
        "connectionId": 1,
        "minWireVersion": 0,
        "maxWireVersion": 21,  # MongoDB 7.0
        "readOnly": False,
        "ok": 1.0,
    }


def reply_to(command):
    name = next(iter(command), "").lower()
    if name in ("hello", "ismaster"):
        return hello_reply()
    return {"ok": 1.0}  # ping, endSessions, and whatever else a client sends on the way


def parse_op_msg(body):
    """The command document of an OP_MSG (its kind-0 section) and its flags."""
    flags = struct.unpack_from("<I", body)[0]
    end = len(body) - (4 if flags & CHECKSUM_PRESENT else 0)
    offset, command = 4, None
    while offset < end:
        kind = body[offset]
        offset += 1
        size = struct.unpack_from("<i", body, offset)[0]
        if kind == 0:
            command = bson.decode(body[offset : offset + size])
        offset += size  # kind 1 (a document sequence) is skipped: size covers it
    return flags, command or {}


def parse_op_query(body):
    """The query document of an OP_QUERY: after flags, the collection name, skip and return."""
    name_end = body.index(b"\x00", 4)
    offset = name_end + 1 + 8
    size = struct.unpack_from("<i", body, offset)[0]
    return bson.decode(body[offset : offset + size])


request_ids = iter(range(1, 1 << 31))


def message(response_to, opcode, payload):
    return struct.pack("<iiii", 16 + len(payload), next(request_ids), response_to, opcode) + payload


async def mongodb_connection(reader, writer):
    try:
        while True:
            header = await reader.readexactly(16)
            length, request_id, _, opcode = struct.unpack("<iiii", header)
            body = await reader.readexactly(length - 16)
            if opcode == OP_MSG:
                flags, command = parse_op_msg(body)
                if flags & MORE_TO_COME:
                    continue  # the client wants no answer
                payload = struct.pack("<I", 0) + b"\x00" + bson.encode(reply_to(command))
                writer.write(message(request_id, OP_MSG, payload))
            elif opcode == OP_QUERY:
                document = bson.encode(reply_to(parse_op_query(body)))
                payload = struct.pack("<iqii", 0, 0, 0, 1) + document
                writer.write(message(request_id, OP_REPLY, payload))
            else:
                break  # OP_COMPRESSED and the rest: never negotiated here
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, ValueError, struct.error):
        pass  # the client went away, did not trust us, or sent what this responder cannot read
    finally:
        writer.close()


# --- all together --------------------------------------------------------------------------------


async def echo(websocket):
    async for text in websocket:
        await websocket.send(text)


def quiet_loop_errors(loop, context):
    # Failed server-side handshakes end up here; the refused clients are expected.
    if not isinstance(context.get("exception"), (ssl.SSLError, ConnectionError)):
        loop.default_exception_handler(context)


async def main():
    cert, key = sys.argv[1], sys.argv[2]
    context = server_context(cert, key)
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    asyncio.get_running_loop().set_exception_handler(quiet_loop_errors)

    ports = {"https": start_https(context)}
    websockets_server = await websocket_serve(echo, HOST, 0, ssl=context)
    ports["wss"] = websockets_server.sockets[0].getsockname()[1]
    grpc_server, ports["grpc"] = start_grpc(cert, key)
    mongodb_server = await asyncio.start_server(mongodb_connection, HOST, 0, ssl=context)
    ports["mongodb"] = mongodb_server.sockets[0].getsockname()[1]

    print("ready", json.dumps(ports, sort_keys=True), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        grpc_server.stop(0)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
