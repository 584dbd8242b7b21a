"""One real TLS call per Python client library, each written the way a new user writes it: the
library's defaults, no CA argument. The peers are tests/helpers/tls_servers.py's.

    client_matrix.py PORTS [--extra]

PORTS is the JSON object tls_servers.py prints after `ready`. Prints one JSON object, a verdict
per client:

    "trusted"     the call went through and the answer is the server's
    "refused"     the client refused the server's certificate: verification failed because its
                  issuer (the test CA) is not among the CAs the client trusts, in that library's
                  own form of saying it
    "error: ..."  anything else (a wrong answer, a timeout, a missing library, a hostname
                  mismatch...): never counted as refused

A call that ends in a timeout or a lost connection is made once more (said on stderr), since a
loaded machine can stall one handshake; a refusal or a wrong answer is never retried.

The 13 clients are those of issue 22. `--extra` adds rows named "extra: ..." that are not among
them: httpx with trust_env=False (certifi's bundle whatever the environment), stripe-python with
its API base at the local server (its own bundled CA file), and pip (a download from the local
server as its index). Exits 0 whatever the verdicts; 2 when the harness itself cannot run.

As a module, `run(ports, extra=False)` returns the same verdicts (the client_matrix test app runs
the matrix inside a uvicorn worker this way).
"""

import asyncio
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time

# gRPC's core logs each failed handshake on stderr at its default verbosity; the baseline's
# refusals are expected, and a run whose Python printed nothing on stderr is easier to judge.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

HOST = "127.0.0.1"
TIMEOUT = 10  # seconds, for one call; a refusal comes well before
NAME = "vardr-probe"  # what every peer of tls_servers.py says


class WrongAnswer(Exception):
    """The call went through, but not to the peer the matrix expects."""


def expect(condition, what):
    if not condition:
        raise WrongAnswer(what)


def expect_probe_json(body):
    expect(isinstance(body, dict) and body.get("server") == NAME, f"not the probe's JSON: {body!r}")


# --- the clients: each a function of the ports that returns when the call worked -------------------


def call_requests(ports):
    import requests

    response = requests.get(f"https://{HOST}:{ports['https']}/", timeout=TIMEOUT)
    response.raise_for_status()
    expect_probe_json(response.json())


def call_httpx(ports):
    import httpx

    response = httpx.get(f"https://{HOST}:{ports['https']}/", timeout=TIMEOUT)
    response.raise_for_status()
    expect_probe_json(response.json())


def call_httpx_async(ports):
    import httpx

    async def call():
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await client.get(f"https://{HOST}:{ports['https']}/")
            response.raise_for_status()
            return response.json()

    expect_probe_json(asyncio.run(call()))


def call_aiohttp(ports):
    import aiohttp

    async def call():
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session:
            async with session.get(f"https://{HOST}:{ports['https']}/") as response:
                response.raise_for_status()
                return await response.json()

    expect_probe_json(asyncio.run(call()))


def call_urllib_request(ports):
    import urllib.request

    with urllib.request.urlopen(f"https://{HOST}:{ports['https']}/", timeout=TIMEOUT) as response:
        expect_probe_json(json.load(response))


def call_urllib3(ports):
    import urllib3

    response = urllib3.request("GET", f"https://{HOST}:{ports['https']}/", timeout=TIMEOUT)
    expect(response.status == 200, f"HTTP {response.status}")
    expect_probe_json(response.json())


def call_websockets(ports):
    from websockets.sync.client import connect

    with connect(f"wss://{HOST}:{ports['wss']}/", open_timeout=TIMEOUT) as websocket:
        websocket.send(NAME)
        echoed = websocket.recv(timeout=TIMEOUT)
    expect(echoed == NAME, f"the echo was {echoed!r}")


def call_botocore(ports):
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=f"https://{HOST}:{ports['https']}",
        region_name="us-east-1",
        aws_access_key_id="vardr-test",
        aws_secret_access_key="vardr-test",
    )
    try:
        names = [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    finally:
        s3.close()
    expect(names == [NAME], f"buckets {names!r}")


def call_elastic_transport(ports):
    from elastic_transport import NodeConfig, Transport

    transport = Transport([NodeConfig("https", HOST, ports["https"], request_timeout=TIMEOUT)])
    try:
        response = transport.perform_request("GET", "/")
    finally:
        transport.close()
    expect(response.meta.status == 200, f"HTTP {response.meta.status}")
    expect_probe_json(response.body)


def call_pymongo(ports):
    from pymongo import MongoClient

    # Server selection retries until its timeout, so a refusal takes that long: 5 s, not 30.
    client = MongoClient(
        f"mongodb://{HOST}:{ports['mongodb']}/?tls=true", serverSelectionTimeoutMS=5000
    )
    try:
        answer = client.admin.command("ping")
    finally:
        client.close()
    expect(answer.get("ok") == 1.0, f"ping answered {answer!r}")


def call_httplib2(ports):
    import httplib2

    http = httplib2.Http(timeout=TIMEOUT)
    response, content = http.request(f"https://{HOST}:{ports['https']}/", "GET")
    expect(response.status == 200, f"HTTP {response.status}")
    expect_probe_json(json.loads(content))


def call_grpcio(ports):
    import grpc

    with grpc.secure_channel(f"{HOST}:{ports['grpc']}", grpc.ssl_channel_credentials()) as channel:
        echoed = channel.unary_unary("/vardr.Probe/Echo")(NAME.encode(), timeout=TIMEOUT)
    expect(echoed == NAME.encode(), f"the echo was {echoed!r}")


def call_certifi_where(ports):
    import urllib.request

    import certifi

    context = ssl.create_default_context(cafile=certifi.where())
    url = f"https://{HOST}:{ports['https']}/"
    with urllib.request.urlopen(url, timeout=TIMEOUT, context=context) as response:
        expect_probe_json(json.load(response))


def call_httpx_no_trust_env(ports):
    import httpx

    with httpx.Client(trust_env=False, timeout=TIMEOUT) as client:
        response = client.get(f"https://{HOST}:{ports['https']}/")
    response.raise_for_status()
    expect_probe_json(response.json())


def call_stripe(ports):
    import stripe

    client = stripe.StripeClient(
        "sk_test_vardr",
        base_addresses={"api": f"https://{HOST}:{ports['https']}"},
        max_network_retries=0,
    )
    balance = client.v1.balance.retrieve()
    expect(balance.get("object") == "balance", f"not a balance: {balance!r}")


def call_pip(ports):
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
             "--disable-pip-version-check", "--retries", "0", "--timeout", str(TIMEOUT),
             "--index-url", f"https://{HOST}:{ports['https']}/simple/", "-d", scratch, NAME],
            capture_output=True, text=True, timeout=6 * TIMEOUT,
        )  # fmt: skip
        if done.returncode != 0:
            raise PipFailed(done.stdout + done.stderr)
        expect(os.listdir(scratch) == ["vardr_probe-1.0-py3-none-any.whl"], "no wheel downloaded")


class PipFailed(Exception):
    """pip exited non-zero; the message is its output."""


CLIENTS = {
    "requests": call_requests,
    "httpx": call_httpx,
    "httpx (async)": call_httpx_async,
    "aiohttp": call_aiohttp,
    "urllib.request": call_urllib_request,
    "urllib3": call_urllib3,
    "websockets": call_websockets,
    "botocore": call_botocore,
    "elastic-transport": call_elastic_transport,
    "pymongo": call_pymongo,
    "httplib2": call_httplib2,
    "grpcio": call_grpcio,
    "certifi.where()": call_certifi_where,
}
EXTRA = {
    "extra: httpx trust_env=False": call_httpx_no_trust_env,
    "extra: stripe": call_stripe,
    "extra: pip": call_pip,
}
# Imported once, one after the other, before the calls run side by side (concurrent first imports
# of packages that import each other can deadlock on import locks).
MODULES = {
    "requests": ["requests"],
    "httpx": ["httpx"],
    "httpx (async)": ["httpx"],
    "aiohttp": ["aiohttp"],
    "urllib.request": ["urllib.request"],
    "urllib3": ["urllib3"],
    "websockets": ["websockets.sync.client"],
    "botocore": ["boto3"],
    "elastic-transport": ["elastic_transport"],
    "pymongo": ["pymongo"],
    "httplib2": ["httplib2"],
    "grpcio": ["grpc"],
    "certifi.where()": ["certifi"],
    "extra: httpx trust_env=False": ["httpx"],
    "extra: stripe": ["stripe"],
    "extra: pip": ["pip"],
}


# --- refusals, in each library's form -------------------------------------------------------------

# OpenSSL's X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: the server's issuer is not a trusted CA.
# Any other verification failure (a hostname mismatch, an expired certificate) is the harness's
# fault, not a verdict on trust.
UNKNOWN_ISSUER = "unable to get local issuer certificate"


def chain(error):
    """`error` and every exception it wraps: causes, contexts, and the libraries' own fields."""
    seen, todo = [], [error]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__]
        # urllib's URLError.reason, urllib3's MaxRetryError.reason, aiohttp's certificate_error,
        # and exceptions that carry another as an argument (elastic-transport's TlsError).
        todo += [getattr(item, name, None) for name in ("reason", "certificate_error", "errors")]
        todo += list(getattr(item, "args", ()))
    return seen


def is_unknown_issuer(error):
    # aiohttp's ClientConnectorCertificateError is an SSLCertVerificationError too, without the
    # code: the ssl module's own error is inside it (certificate_error).
    return isinstance(error, ssl.SSLCertVerificationError) and getattr(error, "verify_code", None) == 20


def refused_by_ssl_module(error):
    """Clients on Python's ssl module: an SSLCertVerificationError (code 20) somewhere inside."""
    return any(is_unknown_issuer(e) for e in chain(error))


def refused_in_message(error, *phrases):
    return all(phrase in str(error) for phrase in phrases)


def refused_botocore(error):
    from botocore.exceptions import SSLError

    # botocore re-raises urllib3's error as its own SSLError with the message alone.
    return refused_by_ssl_module(error) or (
        isinstance(error, SSLError) and refused_in_message(error, "CERTIFICATE_VERIFY_FAILED", UNKNOWN_ISSUER)
    )


def refused_elastic_transport(error):
    from elastic_transport import TlsError

    return refused_by_ssl_module(error) or (
        isinstance(error, TlsError) and refused_in_message(error, "CERTIFICATE_VERIFY_FAILED", UNKNOWN_ISSUER)
    )


def refused_pymongo(error):
    from pymongo.errors import ServerSelectionTimeoutError

    # Server selection gives up with the last handshake error of each server in its message.
    return isinstance(error, ServerSelectionTimeoutError) and refused_in_message(
        error, "CERTIFICATE_VERIFY_FAILED", UNKNOWN_ISSUER
    )


def refused_grpcio(error):
    import grpc

    # gRPC's core (BoringSSL) reports the handshake failure in the status details.
    return (
        isinstance(error, grpc.RpcError)
        and error.code() == grpc.StatusCode.UNAVAILABLE
        and refused_in_message(error.details(), "CERTIFICATE_VERIFY_FAILED")
    )


def refused_stripe(error):
    import stripe

    # stripe-python says so in its own words, with the ssl error's text after them.
    return refused_by_ssl_module(error) or (
        isinstance(error, stripe.APIConnectionError) and refused_in_message(error, "CERTIFICATE_VERIFY_FAILED")
    )


def refused_pip(error):
    return isinstance(error, PipFailed) and refused_in_message(error, "CERTIFICATE_VERIFY_FAILED", UNKNOWN_ISSUER)


REFUSED = {
    "botocore": refused_botocore,
    "elastic-transport": refused_elastic_transport,
    "pymongo": refused_pymongo,
    "grpcio": refused_grpcio,
    "extra: stripe": refused_stripe,
    "extra: pip": refused_pip,
}


def is_transient(error):
    """A timeout or a connection lost on the way: a loaded machine's failure, never a verdict on
    trust (a refusal is an SSL error, classified before this is asked)."""
    return any(isinstance(e, (TimeoutError, ConnectionError)) for e in chain(error))


def verdict(name, call, ports, attempts=2):
    """The call's verdict. An error that is only transient (a timeout, a reset: seen once in a
    CI run, the websockets handshake under load) is retried once, and said on stderr; a refusal
    or a wrong answer never is."""
    for attempt in range(1, attempts + 1):
        try:
            call(ports)
        except Exception as error:  # a verdict, whatever the library raised
            try:
                refused = REFUSED.get(name, refused_by_ssl_module)(error)
            except Exception as classifying:
                return f"error: classifying {type(error).__name__}: {type(classifying).__name__}: {classifying}"
            if refused:
                return "refused"
            text = " ".join(str(error).split())
            if attempt < attempts and is_transient(error):
                print(f"client_matrix: {name}: retried after {type(error).__name__}: {text[:200]}", file=sys.stderr)
                continue
            return f"error: {type(error).__name__}: {text[:400]}"
        return "trusted"


def run(ports, extra=False):
    """The verdict of each client (and of the extra rows when `extra`), in the table's order."""
    clients = dict(CLIENTS, **(EXTRA if extra else {}))
    verdicts, calls = {}, {}
    for name, call in clients.items():
        try:
            for module in MODULES[name]:
                __import__(module)
        except Exception as error:
            verdicts[name] = f"error: {type(error).__name__}: {error}"
        else:
            calls[name] = call
    threads = {}
    for name, call in calls.items():

        def one(name=name, call=call):
            verdicts[name] = verdict(name, call, ports)

        threads[name] = threading.Thread(target=one, name=name, daemon=True)
        threads[name].start()
    deadline = time.monotonic() + 6 * TIMEOUT
    for name, thread in threads.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            verdicts[name] = f"error: no answer within {6 * TIMEOUT} s"
    return {name: verdicts[name] for name in clients}


def main():
    args = sys.argv[1:]
    extra = "--extra" in args
    args = [a for a in args if a != "--extra"]
    try:
        (ports,) = args
        ports = json.loads(ports)
        assert all(isinstance(ports[k], int) for k in ("https", "wss", "grpc", "mongodb"))
    except (ValueError, KeyError, TypeError, AssertionError):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    print(json.dumps(run(ports, extra)), flush=True)
    # A thread still hung in a library must not hold the exit.
    os._exit(0)


if __name__ == "__main__":
    main()
