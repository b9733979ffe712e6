#!/usr/bin/env python3
"""A small ComputeDriver written in Python with grpcio: a conforming driver in another
language for `driver-conformance` (not a mock of ours: it only follows the contract).

Sandboxes are in memory (a sandbox is Ready as soon as it is created; Stop suspends
it, Start resumes it). Like upstream's drivers it sends response headers only with
its first message, answers NOT_FOUND to Stop/Start of a sandbox it does not have, and
leaves the optional RPCs UNIMPLEMENTED.

Usage: python_driver.py --socket PATH   (serves until SIGTERM/SIGINT)
Stubs are generated from proto/proto/compute_driver.proto with grpcio-tools.
"""

import argparse
import importlib
import os
import queue
import re
import signal
import sys
import tempfile
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_tools import protoc

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto", "proto")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def stubs(out):
    import grpc_tools
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    code = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={out}",
                        f"--grpc_python_out={out}", os.path.join(PROTO_DIR, "compute_driver.proto")])
    if code != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out)
    return importlib.import_module("compute_driver_pb2"), importlib.import_module("compute_driver_pb2_grpc")


def make_servicer(pb, rpc):
    class Driver(rpc.ComputeDriverServicer):
        def __init__(self):
            self.lock = threading.Lock()
            self.sandboxes = {}  # id -> (DriverSandbox with spec, suspended)
            self.watchers = []

        def GetCapabilities(self, request, context):
            return pb.GetCapabilitiesResponse(driver_name="python-driver", driver_version="0.1")

        def _invalid(self, sandbox):
            if not sandbox.id:
                return "sandbox.id: must not be empty"
            if sandbox.name and not NAME.match(sandbox.name):
                return "sandbox.name: lowercase letters, digits and '-'"
            resources = sandbox.spec.template.resources
            for field in ("cpu_request", "cpu_limit", "memory_request", "memory_limit"):
                value = getattr(resources, field)
                if value and not QUANTITY.match(value):
                    return f"sandbox.spec.template.resources.{field}: not a quantity"
            return None

        def ValidateSandboxCreate(self, request, context):
            why = self._invalid(request.sandbox)
            if why:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, why)
            return pb.ValidateSandboxCreateResponse()

        def _view(self, sandbox, suspended):
            view = pb.DriverSandbox()
            view.CopyFrom(sandbox)
            view.spec.sandbox_token = ""
            ready = "False" if suspended else "True"
            view.status.sandbox_name = sandbox.name
            view.status.conditions.add(type="Ready", status=ready, reason="Stopped" if suspended else "Running")
            view.status.conditions.add(type="Suspended", status="True" if suspended else "False",
                                       reason="Stopped" if suspended else "Running")
            return view

        def _publish(self, event):
            for watcher in list(self.watchers):
                watcher.put(event)

        def _changed(self, sandbox_id):
            sandbox, suspended = self.sandboxes[sandbox_id]
            view = self._view(sandbox, suspended)
            self._publish(pb.WatchSandboxesEvent(sandbox=pb.WatchSandboxesSandboxEvent(sandbox=view)))

        def CreateSandbox(self, request, context):
            sandbox = request.sandbox
            why = self._invalid(sandbox)
            if why:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, why)
            with self.lock:
                existing = self.sandboxes.get(sandbox.id)
                if existing:
                    if existing[0].spec.SerializeToString(deterministic=True) != sandbox.spec.SerializeToString(deterministic=True) \
                            or existing[0].name != sandbox.name:
                        context.abort(grpc.StatusCode.ALREADY_EXISTS, f"sandbox {sandbox.id} exists with another spec")
                    return pb.CreateSandboxResponse()
                for other, _ in self.sandboxes.values():
                    if sandbox.name and other.name == sandbox.name:
                        context.abort(grpc.StatusCode.ALREADY_EXISTS, f"name {sandbox.name} is taken")
                stored = pb.DriverSandbox()
                stored.CopyFrom(sandbox)
                stored.ClearField("status")
                self.sandboxes[sandbox.id] = (stored, False)
                self._changed(sandbox.id)
            return pb.CreateSandboxResponse()

        def _find(self, sandbox_id, name, context):
            with self.lock:
                if sandbox_id in self.sandboxes:
                    return sandbox_id
                for key, (sandbox, _) in self.sandboxes.items():
                    if name and sandbox.name == name:
                        return key
            context.abort(grpc.StatusCode.NOT_FOUND, f"sandbox {sandbox_id or name} not found")

        def GetSandbox(self, request, context):
            key = self._find(request.sandbox_id, request.sandbox_name, context)
            with self.lock:
                return pb.GetSandboxResponse(sandbox=self._view(*self.sandboxes[key]))

        def ListSandboxes(self, request, context):
            with self.lock:
                return pb.ListSandboxesResponse(sandboxes=[self._view(*v) for v in self.sandboxes.values()])

        def _suspend(self, request, context, suspended):
            key = self._find(request.sandbox_id, request.sandbox_name, context)
            with self.lock:
                sandbox, was = self.sandboxes[key]
                if was != suspended:
                    self.sandboxes[key] = (sandbox, suspended)
                    self._changed(key)

        def StopSandbox(self, request, context):
            self._suspend(request, context, True)
            return pb.StopSandboxResponse()

        def StartSandbox(self, request, context):
            self._suspend(request, context, False)
            return pb.StartSandboxResponse()

        def DeleteSandbox(self, request, context):
            with self.lock:
                key = request.sandbox_id
                if not key and request.sandbox_name:
                    key = next((k for k, (s, _) in self.sandboxes.items() if s.name == request.sandbox_name), "")
                removed = self.sandboxes.pop(key, None)
                if removed:
                    self._publish(pb.WatchSandboxesEvent(deleted=pb.WatchSandboxesDeletedEvent(sandbox_id=key)))
            return pb.DeleteSandboxResponse(deleted=removed is not None)

        def WatchSandboxes(self, request, context):
            events = queue.Queue()
            with self.lock:
                snapshot = [self._view(*v) for v in self.sandboxes.values()]
                self.watchers.append(events)
            try:
                for view in snapshot:
                    yield pb.WatchSandboxesEvent(sandbox=pb.WatchSandboxesSandboxEvent(sandbox=view))
                while context.is_active():
                    try:
                        yield events.get(timeout=0.1)
                    except queue.Empty:
                        continue
            finally:
                with self.lock:
                    self.watchers.remove(events)

    return Driver()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        pb, rpc = stubs(out)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        rpc.add_ComputeDriverServicer_to_server(make_servicer(pb, rpc), server)
        checker = health.HealthServicer()
        checker.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(checker, server)
        os.umask(0o077)  # the socket: 0600, this user only
        server.add_insecure_port(f"unix:{args.socket}")
        server.start()
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        server.stop(grace=1).wait()


if __name__ == "__main__":
    main()
