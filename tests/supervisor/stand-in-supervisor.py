#!/usr/bin/env python3
"""A stand-in for upstream OpenShell's sandbox supervisor (`openshell-sandbox`), for tests.

It does what the real supervisor does on start, as far as a driver can tell: reads its
environment and the sandbox token file, binds its SSH socket, opens a session to the
gateway endpoint (here: one JSON line over TCP to a fake gateway, reporting what it
received), then runs the user's process from OPENSHELL_MAIN_PROCESS_SPEC and exits
with its status. A missing variable or a malformed spec ends it with status 2, as the
real one refuses to start.
"""

import base64
import json
import os
import socket
import subprocess
import sys
import urllib.parse

REQUIRED = [
    "OPENSHELL_SANDBOX",
    "OPENSHELL_SANDBOX_ID",
    "OPENSHELL_ENDPOINT",
    "OPENSHELL_SSH_SOCKET_PATH",
    "OPENSHELL_SANDBOX_TOKEN_FILE",
    "OPENSHELL_MAIN_PROCESS_SPEC",
]


def fail(message):
    print(f"stand-in supervisor: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def main_process(raw):
    if raw.startswith("base64url:"):
        encoded = raw[len("base64url:"):]
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    spec = json.loads(raw)
    if spec.get("version") != 1 or not isinstance(spec.get("command"), list):
        fail(f"unsupported main process spec {raw!r}")
    return spec


def main():
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        fail(f"missing {', '.join(missing)}")
    with open(os.environ["OPENSHELL_SANDBOX_TOKEN_FILE"], encoding="utf-8") as file:
        token = file.read().strip()
    spec = main_process(os.environ["OPENSHELL_MAIN_PROCESS_SPEC"])

    ssh_path = os.environ["OPENSHELL_SSH_SOCKET_PATH"]
    if os.path.exists(ssh_path):
        os.unlink(ssh_path)
    ssh = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ssh.bind(ssh_path)
    ssh.listen()

    endpoint = urllib.parse.urlsplit(os.environ["OPENSHELL_ENDPOINT"])
    session = socket.create_connection((endpoint.hostname, endpoint.port or 80), timeout=10)
    report = {
        "env": {k: v for k, v in os.environ.items() if k.startswith("OPENSHELL_")},
        "token": token,
        "main_process": spec,
        "uid": os.getuid(),
        "gid": os.getgid(),
    }
    session.sendall(json.dumps(report).encode() + b"\n")

    child = subprocess.Popen(spec["command"])
    status = child.wait()
    session.close()
    sys.exit(status if status >= 0 else 128 - status)


if __name__ == "__main__":
    main()
