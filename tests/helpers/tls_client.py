"""GET URLs with one Python HTTP client, trusting whatever the environment says:
tls_client.py urllib|requests|httpx URL...

Prints "ok BODY" per URL and exits 0, or "error: TYPE: MESSAGE" at the first failure and exits 1.
"""

import sys


def get(client, url):
    if client == "urllib":
        import urllib.request

        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read()
    if client == "requests":
        import requests

        response = requests.get(url, timeout=10)
        response.raise_for_status()
        return response.content
    if client == "httpx":
        import httpx

        response = httpx.get(url, timeout=10)
        response.raise_for_status()
        return response.content
    raise SystemExit(f"unknown client {client!r}")


def main():
    client, urls = sys.argv[1], sys.argv[2:]
    for url in urls:
        try:
            body = get(client, url)
        except Exception as error:  # the test reads the message
            print(f"error: {type(error).__name__}: {error}", flush=True)
            sys.exit(1)
        print("ok", body.decode().strip(), flush=True)


if __name__ == "__main__":
    main()
