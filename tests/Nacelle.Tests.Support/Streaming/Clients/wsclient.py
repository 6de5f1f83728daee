#!/usr/bin/python3
"""Drives nacelle's streaming server over WebSocket with the Kubernetes Python client (Debian's python3-kubernetes).

    wsclient.py exec URL PROTOCOL [--stdin TEXT] [--close-stdin] [--close-stdin-after SECONDS] [--resize COLSxROWS]
        Runs kubernetes.stream.ws_client.WSClient against the URL (ws:// or wss://, certificate not verified) with
        the given subprotocol; sends TEXT on stdin, then v5's close signal if asked (after SECONDS); prints one JSON object:
        {"protocol", "stdout", "stderr", "error", "returncode"}.
    wsclient.py portforward URL PORT BYTES
        kubernetes.stream.ws_client.portforward_call with ports=PORT: sends BYTES pseudo-random bytes through the
        forwarded socket in 64 KiB chunks, reading each back (the test's target echoes), prints {"sent", "sentsha", "received",
        "receivedsha", "error"}.
Failures to connect print {"exception": "..."}.
"""
import hashlib
import json
import random
import sys
import time

from kubernetes.client import Configuration
from kubernetes.stream import ws_client
from websocket import ABNF


def configuration():
    config = Configuration()
    config.verify_ssl = False
    return config


def ws_url(url):
    return url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


def run_exec(args):
    url, protocol = args[0], args[1]
    stdin = None
    close_stdin = False
    close_delay = 0.0
    resize = None
    rest = args[2:]
    while rest:
        option = rest.pop(0)
        if option == "--stdin":
            stdin = rest.pop(0)
        elif option == "--close-stdin":
            close_stdin = True
        elif option == "--close-stdin-after":
            close_stdin = True
            close_delay = float(rest.pop(0))
        elif option == "--resize":
            resize = rest.pop(0)
    client = ws_client.WSClient(configuration(), ws_url(url), {"sec-websocket-protocol": protocol}, True)
    if resize:
        width, height = resize.split("x")
        client.write_channel(ws_client.RESIZE_CHANNEL, json.dumps({"Width": int(width), "Height": int(height)}))
    if stdin is not None:
        client.write_stdin(stdin)
    if close_stdin:
        time.sleep(close_delay)
        # v5.channel.k8s.io: [255, channel] closes that channel's input.
        client.sock.send(bytes([255, ws_client.STDIN_CHANNEL]), opcode=ABNF.OPCODE_BINARY)
    client.run_forever(timeout=60)
    error = client.peek_channel(ws_client.ERROR_CHANNEL)
    result = {
        "protocol": client.sock.getsubprotocol() if hasattr(client.sock, "getsubprotocol") else None,
        "stdout": client.read_stdout(),
        "stderr": client.read_stderr(),
        "error": error,
        "open": client.is_open(),
    }
    result["returncode"] = client.returncode if error else None
    print(json.dumps(result))


def run_portforward(args):
    url, port, size = args[0], int(args[1]), int(args[2])
    forward = ws_client.portforward_call(configuration(), "GET", url, query_params=[("ports", str(port))], headers={})
    connection = forward.socket(port)
    connection.settimeout(60)
    generator = random.Random(port)
    data = bytes(generator.getrandbits(8) for _ in range(min(size, 65536)))
    sent = hashlib.sha256()
    received = hashlib.sha256()
    sent_count = received_count = 0
    # One chunk at a time, each echoed back before the next: the client's proxy thread sends with blocking writes
    # and reads only between them, so more data in flight than the buffers on the way hold would stall it.
    while sent_count < size:
        chunk = data[: min(len(data), size - sent_count)]
        connection.sendall(chunk)
        sent.update(chunk)
        sent_count += len(chunk)
        while received_count < sent_count:
            back = connection.recv(1 << 20)
            if not back:
                break
            received.update(back)
            received_count += len(back)
        if received_count < sent_count:
            break
    connection.close()
    print(json.dumps({
        "sent": sent_count, "sentsha": sent.hexdigest(),
        "received": received_count, "receivedsha": received.hexdigest(),
        "error": forward.error(port),
    }))


def main():
    try:
        if sys.argv[1] == "exec":
            run_exec(sys.argv[2:])
        elif sys.argv[1] == "portforward":
            run_portforward(sys.argv[2:])
        else:
            raise SystemExit("unknown command " + sys.argv[1])
    except Exception as e:  # the test reads what went wrong
        print(json.dumps({"exception": repr(e)}))


if __name__ == "__main__":
    main()
