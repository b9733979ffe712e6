#!/usr/bin/env python3
"""Both drivers as a default grpcio client sees them: `grpc.insecure_channel("unix:…")`
with no options (grpc-core then sends the socket path, percent-encoded, as the
:authority). Health, a compute sandbox's lifecycle, and a credential resolve.

Usage: default_client.py --compute-socket PATH --credentials-socket PATH
                         --credential NAME --expect-token VALUE
Stubs are generated from proto/proto/*.proto with grpcio-tools into a scratch dir.
"""

import argparse
import importlib
import os
import sys
import tempfile
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_tools import protoc

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto", "proto")


def stubs(out):
    import grpc_tools
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    for name in ("compute_driver.proto", "credentials_driver.proto"):
        code = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={out}",
                            f"--grpc_python_out={out}", os.path.join(PROTO_DIR, name)])
        if code != 0:
            sys.exit(f"protoc failed for {name}")
    sys.path.insert(0, out)
    return {name: importlib.import_module(name) for name in (
        "compute_driver_pb2", "compute_driver_pb2_grpc",
        "credentials_driver_pb2", "credentials_driver_pb2_grpc")}


def healthy(channel, what):
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING, f"{what}: {reply}"
    print(f"ok: {what} health SERVING")


def compute_lifecycle(channel, m):
    pb, rpc = m["compute_driver_pb2"], m["compute_driver_pb2_grpc"]
    stub = rpc.ComputeDriverStub(channel)
    caps = stub.GetCapabilities(pb.GetCapabilitiesRequest(), timeout=10)
    print(f"ok: compute GetCapabilities: {caps.driver_name}")
    sandbox = pb.DriverSandbox(id="grpcio-1", name="grpcio-1",
                               spec=pb.DriverSandboxSpec(command=["sleep", "30"]))
    stub.CreateSandbox(pb.CreateSandboxRequest(sandbox=sandbox), timeout=30)
    deadline = time.time() + 30
    while True:
        got = stub.GetSandbox(pb.GetSandboxRequest(sandbox_id="grpcio-1"), timeout=10).sandbox
        ready = [c for c in got.status.conditions if c.type == "Ready" and c.status == "True"]
        if ready:
            break
        assert time.time() < deadline, f"never Ready: {got.status}"
        time.sleep(0.2)
    print("ok: compute CreateSandbox → Ready")
    stub.StopSandbox(pb.StopSandboxRequest(sandbox_id="grpcio-1"), timeout=30)
    deleted = stub.DeleteSandbox(pb.DeleteSandboxRequest(sandbox_id="grpcio-1"), timeout=30)
    assert deleted.deleted, deleted
    try:
        stub.GetSandbox(pb.GetSandboxRequest(sandbox_id="grpcio-1"), timeout=10)
        raise AssertionError("GetSandbox after delete succeeded")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error
    print("ok: compute Stop, Delete, then NOT_FOUND")


def credentials_resolve(channel, m, name, expect):
    pb, rpc = m["credentials_driver_pb2"], m["credentials_driver_pb2_grpc"]
    stub = rpc.CredentialsDriverStub(channel)
    listed = stub.ListCredentials(pb.ListCredentialsRequest(), timeout=10)
    assert name in [c.name for c in listed.credentials], listed
    resolved = stub.ResolveCredential(pb.ResolveCredentialRequest(name=name), timeout=10)
    assert resolved.token == expect, "the resolved token differs"
    print(f"ok: credentials ListCredentials and ResolveCredential({name})")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--compute-socket", required=True)
    parser.add_argument("--credentials-socket", required=True)
    parser.add_argument("--credential", required=True)
    parser.add_argument("--expect-token", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        m = stubs(out)
        with grpc.insecure_channel(f"unix:{args.compute_socket}") as compute:
            healthy(compute, "compute-driver")
            compute_lifecycle(compute, m)
        with grpc.insecure_channel(f"unix:{args.credentials_socket}") as credentials:
            healthy(credentials, "credentials-driver")
            credentials_resolve(credentials, m, args.credential, args.expect_token)


if __name__ == "__main__":
    main()
