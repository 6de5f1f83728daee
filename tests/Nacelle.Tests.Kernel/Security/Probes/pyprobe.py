# pyprobe: what a Python program does on an ordinary day -- interpreter start, threads, subprocess, sockets, asyncio,
# epoll, files, sqlite, hashing -- run by the kernel tests inside RuntimeDefault containers with Debian's python3.
# Prints "python=ok <version>" when everything worked; a failure raises (exit code 1 and a traceback).
import asyncio
import concurrent.futures
import hashlib
import json
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading

with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
    assert sum(pool.map(lambda i: i * i, range(100))) == 328350

done = threading.Event()
threading.Thread(target=done.set).start()
assert done.wait(10)

assert subprocess.run(["/usr/bin/true"]).returncode == 0
assert subprocess.run(["/usr/bin/echo", "child"], capture_output=True, text=True).stdout == "child\n"

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(("127.0.0.1", 0))
server.listen()
client = socket.create_connection(server.getsockname(), timeout=10)
peer, _ = server.accept()
client.sendall(b"hello")
assert peer.recv(5) == b"hello"
for s in (client, peer, server):
    s.close()

a, b = socket.socketpair()
ep = select.epoll()
ep.register(b.fileno(), select.EPOLLIN)
a.send(b"x")
assert ep.poll(10)
ep.close()


async def echo_once():
    async def handle(reader, writer):
        writer.write(await reader.read(5))
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"async")
    await writer.drain()
    assert await reader.read(5) == b"async"
    writer.close()
    srv.close()
    await srv.wait_closed()


asyncio.run(echo_once())

got = []
signal.signal(signal.SIGUSR1, lambda *_: got.append(1))
os.kill(os.getpid(), signal.SIGUSR1)
assert got

with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "f.json")
    with open(path, "w") as f:
        json.dump({"k": [1, 2]}, f)
    with open(path) as f:
        assert json.load(f)["k"] == [1, 2]
    assert [e.name for e in os.scandir(d)] == ["f.json"]

db = sqlite3.connect(":memory:")
db.execute("create table t (x)")
db.execute("insert into t values (1)")
assert db.execute("select count(*) from t").fetchone()[0] == 1

assert hashlib.sha256(b"abc").hexdigest().startswith("ba7816bf")
print("python=ok", sys.version.split()[0])
