#!/usr/bin/env python3
"""The chart as the field will use it, checked with real tools.

For the default values and every file in helm/sandbox-gateway/examples/: render with
Helm's own engine (helm-python-sdk, which also applies values.schema.json), validate
every manifest with kubernetes-validate in strict mode, assert the pod's properties
(native sidecars in order with probes, a socket volume per driver shared only with the
gateway, the API token only in the compute driver, secrets mounted from the named
Secret, a PVC or PostgreSQL, restricted security contexts), and run every container
of ours through its real binary's --check-config with the rendered command line (the
container's mounts recreated under a scratch root). Bad values must fail to render
with a message naming them.

Usage: chart_test.py --bin-dir target/debug
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

import helm_python
import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CHART = os.path.join(HERE, "..", "sandbox-gateway")
KUBE_VERSION = "1.33.0"
OURS = ("gateway-shim", "compute-driver", "credentials-driver")
# Kinds whose schemas are CRDs (not in kubernetes-validate): their shape is asserted.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}

BAD_VALUES = [
    ({"gateway": {"tls": {"clientAuth": "required"}}}, "gateway.tls.existingSecret"),
    ({"gateway": {"tls": {"existingSecret": "s", "clientAuth": "always"}}}, "clientAuth"),
    ({"gateway": {"trustedProxy": {"enabled": True}}}, "gateway.trustedProxy.peers"),
    ({"gateway": {"controlPlane": {"url": "https://cp.example"}}},
     "gateway.controlPlane.secretExistingSecret"),
    ({"gateway": {"controlPlane": {"tenantProviderKeys": {"llm": "OPENAI_API_KEY"}}}},
     "gateway.controlPlane.tenantProviderKeys needs"),
    ({"gateway": {"controlPlane": {"url": "https://cp.example", "secretExistingSecret": "s",
                                   "tenantProviderKeys": {"llm": "openai-key"}}}},
     "tenantProviderKeys"),
    ({"gateway": {"trustedProxy": {"enabled": True, "peers": [], "tenantHedaer": "x"}}},
     "tenantHedaer"),
    ({"replicas": 2}, "store.type=postgres"),
    (
        {"replicas": 2, "store": {"type": "postgres", "postgres": {"existingSecret": "pg"}},
         "computeDriver": {"backend": "process"}},
        "computeDriver.backend=kubernetes",
    ),
    ({"gateway": {"oidc": {"enabled": True}}}, "gateway.oidc.issuer"),
    ({"computeDriver": {"backend": "docker"}}, "computeDriver/backend"),
    ({"store": {"type": "postgres"}}, "store.postgres.existingSecret"),
    (
        {"credentialsDriver": {"config": "credentials:\n  a:\n    kind: static\n    token_ref: a\n"}},
        "credentialsDriver.existingSecret",
    ),
    ({"gateway": {"kind": "external"}}, "gateway.external.image"),
    ({"computeDriver": {"enabled": False}}, "gateway.kind=shim needs computeDriver.enabled"),
    ({"replicas": 0}, "replicas"),
    ({"gateway": {"shutdownGrace": "soon"}}, "shutdownGrace"),
]


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def render(chart, values):
    out = chart.render(values, name="gw", namespace="openshell")
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append((path, doc))
    return docs


def validate(docs):
    for path, doc in docs:
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key in CRD_KINDS:
            check(doc.get("spec", {}).get("endpoints"), f"{path}: {key} without endpoints")
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            raise Failure(f"{path}: {doc['kind']} {doc['metadata']['name']}: {error.message}")


def by_kind(docs, kind):
    return [doc for _, doc in docs if doc["kind"] == kind]


def binary_of(image):
    name = image.rsplit("/", 1)[-1].split(":", 1)[0]
    return name if name in OURS else None


def mounts_of(container):
    return {m["name"]: m for m in container.get("volumeMounts", [])}


def assert_pod(name, values, docs):
    merged = values["_merged"]
    deployment = by_kind(docs, "Deployment")
    check(len(deployment) == 1, f"{name}: one Deployment")
    deployment = deployment[0]
    pod = deployment["spec"]["template"]["spec"]
    check(pod.get("automountServiceAccountToken") is False, f"{name}: no automounted API token")
    check(pod["securityContext"].get("runAsNonRoot") is True, f"{name}: pod runAsNonRoot")
    inits = pod.get("initContainers", [])
    mains = pod["containers"]
    everyone = inits + mains
    names = [c["name"] for c in inits]
    compute = merged["computeDriver"]["enabled"]
    creds = merged["credentialsDriver"]["enabled"]
    shim = merged["gateway"]["kind"] == "shim"
    want = (["check-config"] if shim else []) + (["compute-driver"] if compute else []) + (
        ["credentials-driver"] if creds else [])
    check(names == want, f"{name}: init containers {names}, want {want}")
    for c in inits:
        sidecar = c["name"] != "check-config"
        check((c.get("restartPolicy") == "Always") == sidecar,
              f"{name}: {c['name']} restartPolicy {c.get('restartPolicy')}")
        if sidecar:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                check(probe in c, f"{name}: sidecar {c['name']} has no {probe}")
    gateway = [c for c in mains if c["name"] == "gateway"]
    check(len(gateway) == 1, f"{name}: a gateway container")
    gateway = gateway[0]
    if shim:
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            check(probe in gateway, f"{name}: gateway has no {probe}")

    # A socket volume per driver, mounted into that driver and the gateway only.
    for volume, driver in (("compute-socket", "compute-driver"), ("credentials-socket", "credentials-driver")):
        holders = sorted(c["name"] for c in everyone if volume in mounts_of(c))
        if (driver == "compute-driver" and not compute) or (driver == "credentials-driver" and not creds):
            check(not holders, f"{name}: {volume} mounted without its driver")
            continue
        want = sorted([driver, "gateway"] + (["check-config"] if shim else []))
        check(holders == want, f"{name}: {volume} mounted in {holders}, want {want}")

    # The API token only in the compute driver, and only with the kubernetes backend.
    token_volumes = [v["name"] for v in pod.get("volumes", [])
                     if any("serviceAccountToken" in s for s in v.get("projected", {}).get("sources", []))]
    kube = compute and merged["computeDriver"]["backend"] == "kubernetes"
    check(bool(token_volumes) == kube, f"{name}: API token volume {token_volumes}, kubernetes backend {kube}")
    for volume in token_volumes:
        holders = [c["name"] for c in everyone if volume in mounts_of(c)]
        check(holders == ["compute-driver"], f"{name}: API token mounted in {holders}")
    if kube:
        check(pod.get("serviceAccountName"), f"{name}: no ServiceAccount for the compute driver")
        check(by_kind(docs, "ServiceAccount"), f"{name}: ServiceAccount not rendered")

    # Credentials secrets from the named Secret, read-only, in the credentials driver.
    secret = merged["credentialsDriver"]["existingSecret"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    if creds and secret:
        v = volumes.get("credentials-secrets", {})
        check(v.get("secret", {}).get("secretName") == secret, f"{name}: secrets not from {secret}")
        check(v["secret"].get("defaultMode") == 0o440, f"{name}: secret files readable by others")
        m = mounts_of([c for c in inits if c["name"] == "credentials-driver"][0]).get("credentials-secrets")
        check(m and m.get("readOnly"), f"{name}: secrets not mounted read-only")
    check(not by_kind(docs, "Secret"), f"{name}: the chart renders a Secret (placeholder secrets)")

    # The store: a PVC for SQLite, a Secret's URL for PostgreSQL.
    if shim:
        env = {e["name"]: e for e in gateway.get("env", [])}
        if merged["store"]["type"] == "sqlite":
            claim = volumes.get("gateway-data", {}).get("persistentVolumeClaim", {}).get("claimName")
            pvcs = [p["metadata"]["name"] for p in by_kind(docs, "PersistentVolumeClaim")]
            check(claim and claim in pvcs, f"{name}: SQLite not on a rendered PVC ({claim}, {pvcs})")
            check(deployment["spec"]["replicas"] == 1, f"{name}: SQLite with several replicas")
            check(deployment["spec"].get("strategy", {}).get("type") == "Recreate", f"{name}: SQLite rollout not Recreate")
        else:
            ref = env["GATEWAY_DB_URL"].get("valueFrom", {}).get("secretKeyRef", {})
            check(ref.get("name") == merged["store"]["postgres"]["existingSecret"], f"{name}: PostgreSQL URL not from its Secret")
            check(not by_kind(docs, "PersistentVolumeClaim"), f"{name}: PVC with PostgreSQL")

    # Restricted pod security everywhere.
    fixed = merged["ids"]["fixed"]
    uids = set()
    for c in everyone:
        sc = c.get("securityContext", {})
        for key, want in (("allowPrivilegeEscalation", False), ("readOnlyRootFilesystem", True), ("runAsNonRoot", True)):
            check(sc.get(key) is want, f"{name}: {c['name']} {key}={sc.get(key)}")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: {c['name']} keeps capabilities")
        check(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: {c['name']} seccomp")
        check(("runAsUser" in sc) == fixed, f"{name}: {c['name']} runAsUser with ids.fixed={fixed}")
        if fixed and c["name"] != "check-config":
            uids.add(sc["runAsUser"])
    if fixed:
        check(len(uids) == len(everyone) - (1 if shim else 0), f"{name}: containers share UIDs {uids}")
        for c in inits:
            if c["name"] in ("compute-driver", "credentials-driver"):
                args = c["args"]
                check(f"--socket-group={merged['ids']['group']}" in args, f"{name}: {c['name']} socket group")
                check(f"--allowed-uids={merged['ids']['gateway']}" in args, f"{name}: {c['name']} peer UIDs")
    return pod


def populate(root, pod, container, docs):
    """Recreates the container's mounts under `root`; returns a path mapper."""
    configmaps = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = container.get("volumeMounts", [])
    for mount in mounts:
        target = root + mount["mountPath"]
        os.makedirs(target, exist_ok=True)
        os.chmod(target, 0o755)
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            data = configmaps[volume["configMap"]["name"]]["data"]
            for item in volume["configMap"].get("items", [{"key": k, "path": k} for k in data]):
                with open(os.path.join(target, item["path"]), "w") as f:
                    f.write(data[item["key"]])
        elif "secret" in volume and mount["name"] == "gateway-tls":
            # A kubernetes.io/tls Secret: a real key and certificate (self-signed, so
            # it serves as the client CA too), each with the volume's mode.
            key, crt = os.path.join(target, "tls.key"), os.path.join(target, "tls.crt")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                            "-days", "1", "-subj", "/CN=gateway"],
                           check=True, capture_output=True)
            shutil.copy(crt, os.path.join(target, "ca.crt"))
            for file in ("tls.key", "tls.crt", "ca.crt"):
                os.chmod(os.path.join(target, file), volume["secret"].get("defaultMode", 0o644))
        elif "secret" in volume and mount["name"] in ("gateway-proxy", "gateway-control-plane"):
            # The trusted proxy's shared secret.
            path = os.path.join(target, "secret")
            with open(path, "w") as f:
                f.write("a-shared-secret-of-some-length\n")
            os.chmod(path, volume["secret"].get("defaultMode", 0o644))
        elif "secret" in volume:
            config = yaml.safe_load(configmaps[next(iter(configmaps))]["data"]["credentials.yaml"]) or {}
            for entry in (config.get("credentials") or {}).values():
                for key in ("token_ref", "client_secret_ref"):
                    if key in entry:
                        path = os.path.join(target, entry[key])
                        with open(path, "w") as f:
                            f.write("test-value\n")
                        os.chmod(path, volume["secret"].get("defaultMode", 0o644))
        elif "projected" in volume:
            for file in ("token", "ca.crt", "namespace"):
                with open(os.path.join(target, file), "w") as f:
                    f.write("x\n")

    prefixes = sorted((m["mountPath"] for m in mounts), key=len, reverse=True)

    def mapped(value):
        for scheme in ("sqlite:", ""):
            if value.startswith(scheme + "/"):
                path = value[len(scheme):]
                if any(path == p or path.startswith(p + "/") for p in prefixes):
                    return scheme + root + path
        return value

    return mapped


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://kubernetes.default.svc:443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: in-cluster-stand-in}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def config_check(name, pod, docs, bin_dir, break_secret=False):
    """Runs each of our containers' rendered command line through --check-config."""
    ran = 0
    for container in pod.get("initContainers", []) + pod["containers"]:
        binary = binary_of(container["image"])
        if not binary:
            continue
        root = tempfile.mkdtemp(prefix="ch", dir="/tmp")
        try:
            mapped = populate(root, pod, container, docs)
            args = []
            for arg in container.get("args", []):
                flag, eq, value = arg.partition("=")
                args.append(flag + eq + mapped(value) if eq else arg)
            if "--check-config" not in args:
                args.append("--check-config")
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": root}
            for e in container.get("env", []):
                if "value" in e:
                    env[e["name"]] = mapped(e["value"])
                elif e["name"] == "GATEWAY_DB_URL":
                    env[e["name"]] = "postgres://gateway:pw@postgres.openshell:5432/gateway"
            if any(a == "--backend=kubernetes" for a in args):
                # Outside a pod the in-cluster config cannot load: a kubeconfig to the
                # in-cluster address stands in for the mounted ServiceAccount.
                path = os.path.join(root, "kubeconfig")
                with open(path, "w") as f:
                    f.write(KUBECONFIG)
                env["KUBECONFIG"] = path
            if break_secret and binary == "credentials-driver":
                for dirpath, _, files in os.walk(root + "/etc/credentials-driver/secrets"):
                    for file in files:
                        os.remove(os.path.join(dirpath, file))
            run = subprocess.run([os.path.join(bin_dir, binary)] + args, env=env,
                                 capture_output=True, text=True, timeout=60)
            output = run.stdout + run.stderr
            if break_secret and binary == "credentials-driver":
                check(run.returncode != 0 and "config error: credentials." in output,
                      f"{name}: a missing secret file passed the check:\n{output}")
            else:
                check(run.returncode == 0 and "configuration OK" in run.stdout,
                      f"{name}: {container['name']}: {binary} {' '.join(args)}\n{output}")
            ran += 1
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return ran


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    bin_dir = os.path.abspath(parser.parse_args().bin_dir)
    chart = helm_python.Chart.load(CHART)
    app_version = chart.metadata["appVersion"]
    cases = [("default values", {})]
    for path in sorted(glob.glob(os.path.join(CHART, "examples", "*.yaml"))):
        with open(path) as f:
            cases.append((os.path.relpath(path, CHART), yaml.safe_load(f) or {}))
    failures = []
    for name, values in cases:
        try:
            docs = render(chart, values)
            validate(docs)
            values = dict(values, _merged=chart.merge_values(values))
            pod = assert_pod(name, values, docs)
            if name == "default values":
                images = sorted({c["image"] for c in pod["initContainers"] + pod["containers"]})
                want = sorted(f"openshell/{b}:{app_version}" for b in OURS)
                check(images == want, f"default images {images}, want {want} (the names .ci/build-images gives)")
            tls = values["_merged"]["gateway"]["tls"]
            if tls["existingSecret"]:
                args = next(c for c in pod["containers"] if c["name"] == "gateway")["args"]
                want = ["--tls-cert=/etc/gateway-tls/tls.crt", "--tls-key=/etc/gateway-tls/tls.key"]
                if tls["clientAuth"]:
                    want += [f"--tls-client-auth={tls['clientAuth']}"]
                check(all(a in args for a in want), f"{name}: TLS flags {want} missing from {args}")
            proxy = values["_merged"]["gateway"]["trustedProxy"]
            if proxy["enabled"]:
                args = next(c for c in pod["containers"] if c["name"] == "gateway")["args"]
                want = [f"--trusted-proxy-listen=0.0.0.0:{proxy['port']}"]
                want += [f"--trusted-proxy-peer={peer}" for peer in proxy["peers"]]
                if proxy["secretExistingSecret"]:
                    want.append("--trusted-proxy-secret-file=/etc/gateway-proxy/secret")
                want += [f"--trusted-proxy-attribute-header={h}={c}"
                         for h, c in proxy["attributeHeaders"].items()]
                check(all(a in args for a in want), f"{name}: proxy flags {want} missing from {args}")
                ports = [p["name"] for d in by_kind(docs, "Service") for p in d["spec"]["ports"]]
                check("proxy" in ports, f"{name}: the Service has no proxy port: {ports}")
            control_plane = values["_merged"]["gateway"]["controlPlane"]
            if control_plane["url"]:
                args = next(c for c in pod["containers"] if c["name"] == "gateway")["args"]
                want = [f"--control-plane-url={control_plane['url']}",
                        "--control-plane-secret-file=/etc/gateway-control-plane/secret"]
                want += [f"--tenant-provider-key={p}={e}"
                         for p, e in control_plane.get("tenantProviderKeys", {}).items()]
                check(all(a in args for a in want), f"{name}: control-plane flags {want} missing from {args}")
            ran = config_check(name, pod, docs, bin_dir)
            check(ran >= 1, f"{name}: no container of ours was checked")
            if values["_merged"]["credentialsDriver"]["existingSecret"]:
                config_check(name, pod, docs, bin_dir, break_secret=True)
            print(f"ok: {name}: {len(docs)} manifests valid, {ran} command lines pass --check-config")
        except Failure as failure:
            failures.append(str(failure))
            print(f"FAIL: {failure}")
    for values, needle in BAD_VALUES:
        try:
            chart.render(values, name="gw", namespace="openshell")
            failures.append(f"bad values rendered: {values}")
            print(f"FAIL: bad values rendered: {values}")
        except Exception as error:  # the engine's render/values errors
            message = str(error)
            if needle not in message:
                failures.append(f"bad values {values}: message does not name {needle!r}: {message}")
                print(f"FAIL: {values}: {message}")
            else:
                print(f"ok: refused {values}: {message.splitlines()[-1][:160]}")
    if failures:
        print(f"\n{len(failures)} failure(s)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
