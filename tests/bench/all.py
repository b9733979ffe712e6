#!/usr/bin/env python3
"""Runs every benchmark of the suite, measures the release binaries' start-up and idle
RSS, writes the figures into BENCHMARKS.md (between the `bench-all` markers) and draws
SVG plots into tests/bench/plots/.

    python3 tests/bench/all.py                 # BENCH_SECONDS=3 per level (default)
    BENCH_SECONDS=10 python3 tests/bench/all.py
    python3 tests/bench/all.py --only gateway  # some benchmarks (and the RSS check) only
    python3 tests/bench/all.py --replot        # the last run's saved output, again

Each benchmark prints Markdown tables under `## ` headings on stdout; they are copied
as printed, and the goals of the performance issue are computed from them (ratios
within this one run). Python's standard library only: the plots are plain SVG.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLOTS = os.path.join(ROOT, "tests", "bench", "plots")
SAVED = os.path.join(ROOT, "target", "bench-all")
BENCHMARKS_MD = os.path.join(ROOT, "BENCHMARKS.md")
BEGIN = "<!-- bench-all:begin -->"
END = "<!-- bench-all:end -->"

# (key, crate, bench, environment): every benchmark of the suite; the Kubernetes
# backend at 1,000, 10,000 and 100,000 sandboxes (how its figures grow).
BENCHES = [
    ("uds", "proto", "uds_roundtrip", {}),
    ("credentials", "credentials-driver", "resolve", {}),
    ("head_of_line", "credentials-driver", "head_of_line", {}),
    ("process", "compute-driver", "process_backend", {}),
    ("kube-1k", "compute-driver", "kube_backend", {"KUBE_SANDBOXES": "1000"}),
    ("kube", "compute-driver", "kube_backend", {"KUBE_SANDBOXES": "10000"}),
    ("kube-100k", "compute-driver", "kube_backend", {"KUBE_SANDBOXES": "100000"}),
    ("gateway", "gateway-shim", "gateway", {}),
    ("metering", "gateway-shim", "metering", {}),
    ("scale", "gateway-shim", "scale", {}),
]
KUBE_SIZES = [("kube-1k", 1_000), ("kube", 10_000), ("kube-100k", 100_000)]


# ---------------------------------------------------------------- running

def run_bench(crate, bench, env):
    """stdout of `cargo bench -p crate --bench bench` with `env` (raises on failure)."""
    shown = " ".join(f"{k}={v}" for k, v in env.items())
    print(f"== {shown} cargo bench -p {crate} --bench {bench}".replace("==  ", "== "), flush=True)
    started = time.monotonic()
    done = subprocess.run(
        ["cargo", "bench", "-p", crate, "--bench", bench],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=3600, check=True,
        env={**os.environ, **env})
    print(f"   {time.monotonic() - started:.0f} s", flush=True)
    return done.stdout


def sections(text):
    """[(heading, [table lines])]: each `## ` heading with the tables under it (tables
    before any heading under "")."""
    found = []
    heading, table = "", []
    for line in text.splitlines():
        if line.startswith("## "):
            if heading is not None:
                found.append((heading, table))
            heading, table = line[3:].strip(), []
        elif line.startswith("|"):
            table.append(line)
    found.append((heading, table))
    return [(h, t) for h, t in found if t or h]


def rows(table):
    """The table's data rows as lists of cells (header and rule skipped)."""
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table]
    return [r for r in cells[2:] if r]


def duration(text):
    """Seconds from a Rust Debug duration or `12.3 ms`-like text; None if not one."""
    match = re.match(r"^\s*([\d.]+)\s*(ns|µs|us|ms|s)\b", text)
    if not match:
        return None
    scale = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}[match.group(2)]
    return float(match.group(1)) * scale


def columns(text, header):
    """Rows of a whitespace-aligned table whose header line starts with `header`."""
    found, inside = [], False
    for line in text.splitlines():
        words = line.split()
        if words[:1] == [header]:
            inside = True
        elif inside and words and number(words[0]) is not None:
            found.append(words)
        elif inside:
            inside = False
    return found


def p50_of(text, start):
    """The `p50 <duration>` of the first line starting with `start`."""
    for line in text.splitlines():
        if line.startswith(start):
            match = re.search(r"p50 ([\d.]+(?:ns|µs|ms|s))", line)
            if match:
                return duration(match.group(1))
    return None


def rss_lines(text):
    """(what, KiB) of every `... RSS ...: N KiB` line."""
    return [(m.group(1).strip(), int(m.group(2)))
            for m in re.finditer(r"^(.*RSS[^:\n]*): (\d+) KiB", text, re.M)]


def number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(0.005)
    raise RuntimeError(f"{what} not ready within {timeout} s")


def ready(url):
    def check():
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                return reply.status == 200
        except OSError:
            return False
    return check


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def binaries():
    """Start-up time (spawn → /readyz 200) and idle RSS of the three release binaries,
    started as the README starts them (process backend, an empty credentials config,
    `gateway-shim serve` on both with a SQLite file)."""
    print("== cargo build --release (the three binaries)", flush=True)
    subprocess.run(["cargo", "build", "--release", "-p", "gateway-shim", "-p", "compute-driver",
                    "-p", "credentials-driver"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    release = os.path.join(ROOT, "target", "release")
    work = tempfile.mkdtemp(prefix="bench-", dir="/tmp")
    os.chmod(work, 0o700)
    os.makedirs(os.path.join(work, "secrets"), mode=0o700)
    with open(os.path.join(work, "credentials.yaml"), "w") as config:
        config.write("credentials: {}\n")
    ports = {name: free_port() for name in ("compute", "credentials", "gateway")}
    commands = {
        "compute-driver": [os.path.join(release, "compute-driver"),
                           "--socket", f"{work}/c.sock", "--state-dir", f"{work}/state",
                           "--metrics-addr", f"127.0.0.1:{ports['compute']}"],
        "credentials-driver": [os.path.join(release, "credentials-driver"),
                               "--socket", f"{work}/k.sock", "--config", f"{work}/credentials.yaml",
                               "--secrets-dir", f"{work}/secrets",
                               "--metrics-addr", f"127.0.0.1:{ports['credentials']}"],
        "gateway-shim serve": [os.path.join(release, "gateway-shim"), "serve",
                               "--compute-driver-socket", f"{work}/c.sock",
                               "--credentials-driver-socket", f"{work}/k.sock",
                               "--db-url", f"sqlite:{work}/gw/gateway.db",
                               "--listen", "127.0.0.1:0",
                               "--metrics-addr", f"127.0.0.1:{ports['gateway']}"],
    }
    admin = {"compute-driver": ports["compute"], "credentials-driver": ports["credentials"],
             "gateway-shim serve": ports["gateway"]}
    processes, figures = {}, {}
    try:
        for name, command in commands.items():
            started = time.monotonic()
            processes[name] = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL)
            at = wait_for(ready(f"http://127.0.0.1:{admin[name]}/readyz"), 30, name)
            figures[name] = {"start": at - started}
        time.sleep(4)
        for name, process in processes.items():
            figures[name]["rss_kib"] = rss_kib(process.pid)
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)
    return figures


# ---------------------------------------------------------------- plots

def svg_start(width, height, title):
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif" font-size="12">',
            f'<rect width="{width}" height="{height}" fill="white"/>',
            f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>']


def svg_write(path, elements):
    with open(path, "w") as svg:
        svg.write("\n".join(elements + ["</svg>"]) + "\n")
    return True


COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def line_chart(path, title, x_label, y_label, series, log_y=False):
    """series: [(label, [(x, y)])]; x on a log scale (concurrency levels)."""
    import math
    width, height, left, right, top, bottom = 640, 400, 80, 180, 40, 50
    points = [p for _, pts in series for p in pts if p[1] and p[1] > 0]
    if not points:
        return False
    xs = sorted({x for x, _ in points})
    ys = [y for _, y in points]
    fx = (lambda x: math.log10(x)) if len(xs) > 1 else (lambda x: x)
    x0, x1 = fx(min(xs)), fx(max(xs)) if max(xs) != min(xs) else fx(min(xs)) + 1
    if log_y:
        y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
        fy = math.log10
        ticks = [10 ** e for e in range(y0, y1 + 1)]
    else:
        y0, y1, fy = 0.0, max(ys) * 1.1, (lambda y: y)
        ticks = [y1 * i / 5 for i in range(6)]
    if y1 == y0:
        y1 = y0 + 1

    def px(x):
        return left + (fx(x) - x0) / (x1 - x0) * (width - left - right)

    def py(y):
        return height - bottom - (fy(y) - y0) / (y1 - y0) * (height - top - bottom)

    out = svg_start(width, height, title) + [
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="black"/>',
           f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle">{x_label}</text>',
           f'<text x="15" y="{height / 2}" text-anchor="middle" transform="rotate(-90 15 {height / 2})">{y_label}</text>']
    for x in xs:
        out.append(f'<text x="{px(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">{x:g}</text>')
    for y in ticks:
        out.append(f'<line x1="{left - 4}" y1="{py(y):.1f}" x2="{width - right}" y2="{py(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{short(y)}</text>')
    for i, (label, pts) in enumerate(series):
        pts = [(x, y) for x, y in pts if y and y > 0]
        if not pts:
            continue
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
        ly = top + 10 + i * 18
        out.append(f'<line x1="{width - right + 10}" y1="{ly}" x2="{width - right + 30}" y2="{ly}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{width - right + 35}" y="{ly + 4}">{label}</text>')
    return svg_write(path, out)


def bar_chart(path, title, unit, bars):
    """bars: [(label, value)], horizontal."""
    if not bars:
        return False
    width, left, bar, gap, top = 820, 400, 18, 8, 40
    height = top + len(bars) * (bar + gap) + 20
    top_value = max(v for _, v in bars) * 1.15
    out = svg_start(width, height, title)
    for i, (label, value) in enumerate(bars):
        y = top + i * (bar + gap)
        w = value / top_value * (width - left - 20)
        out.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{label}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{COLOURS[0]}"/>')
        out.append(f'<text x="{left + w + 4:.1f}" y="{y + 13}">{value:,.1f} {unit}</text>')
    return svg_write(path, out)


def short(value):
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    if value >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


# ---------------------------------------------------------------- figures

def table_of(outputs, key, heading_start):
    for heading, table in sections(outputs.get(key, "")):
        if heading.startswith(heading_start):
            return rows(table)
    return []


def series_by_path(table, x_col, y_col, transform=lambda v: v):
    """{path: [(callers, value)]} from rows `| path | callers | ... |`."""
    found = {}
    for row in table:
        x, y = number(row[x_col]), row[y_col]
        value = duration(y) if duration(y) is not None else number(y)
        if x is not None and value is not None:
            found.setdefault(row[0], []).append((x, transform(value)))
    return found


def goals(outputs, processes):
    """[(goal, target, measured, met)] for every goal computable from this run."""
    out = []
    resolve = table_of(outputs, "gateway", "resolve")
    by = {(r[0], int(r[1])): r for r in resolve if number(r[1])}

    def p(path, callers, col):
        row = by.get((path, callers))
        return duration(row[col]) if row else None

    def rate(path, callers):
        row = by.get((path, callers))
        return number(row[5]) if row else None

    # The bare proxy (the same two HTTP/2 stacks around the driver's call, nothing
    # else) is shown beside each ratio: the floor under any gateway of this shape.
    floor = "bare proxy, the floor (TCP → UDS)"
    for label, path in [("resolve", "gateway (TCP → UDS)"), ("bundle", "gateway bundle (TCP → UDS)")]:
        direct, via, bare = p("driver (UDS)", 1, 3), p(path, 1, 3), p(floor, 1, 3)
        if direct and via:
            beside = f"; bare proxy {bare * 1e6:.0f} µs ({bare / direct:.2f}×)" if bare else ""
            out.append((f"gateway {label} p50 at 1 caller vs the driver's", "≤ 2×",
                        f"{via * 1e6:.0f} µs vs {direct * 1e6:.0f} µs ({via / direct:.2f}×){beside}",
                        via / direct <= 2))
        for callers in (16, 64):
            direct_rate, via_rate = rate("driver (UDS)", callers), rate(path, callers)
            bare_rate = rate(floor, callers)
            if direct_rate and via_rate:
                share = via_rate / direct_rate
                beside = f"; bare proxy {bare_rate:,.0f}/s ({bare_rate / direct_rate:.0%})" if bare_rate else ""
                out.append((f"gateway {label} throughput at {callers} callers vs the driver's", "≥ 50 %",
                            f"{via_rate:,.0f}/s vs {direct_rate:,.0f}/s ({share:.0%}){beside}", share >= 0.5))
        p99 = p(path, 16, 4)
        if p99:
            out.append((f"gateway {label} p99 at 16 callers", "≤ 5 ms", f"{p99 * 1e3:.1f} ms", p99 <= 5e-3))
    create = table_of(outputs, "gateway", "sandbox create")
    by_create = {(r[0], int(r[1])): r for r in create if number(r[1])}
    for driver in ("mock driver", "process backend"):
        for callers in (1, 16):
            direct = by_create.get((f"{driver} (UDS)", callers))
            via = by_create.get((f"gateway → {driver} (TCP → UDS)", callers))
            if direct and via:
                d, v = duration(direct[3]), duration(via[3])
                out.append((f"sandbox create p50 at {callers} caller(s) vs the {driver}'s own", "≤ 1.5×",
                            f"{v * 1e3:.2f} ms vs {d * 1e3:.2f} ms ({v / d:.2f}×)", v / d <= 1.5))
    for name, start in [("ListSandboxes", "ListSandboxes,"), ("Watch snapshot", "WatchSandboxes snapshot")]:
        value = p50_of(outputs.get("kube", ""), start)
        if value is not None:
            out.append((f"Kubernetes backend {name} p50, 10,000 sandboxes", "≤ 30 ms",
                        f"{value * 1e3:.1f} ms", value <= 0.030))
    limits = {"gateway-shim serve": 20, "credentials-driver": 8, "compute-driver": 15}
    for name, figures in processes.items():
        rss = figures.get("rss_kib")
        if rss:
            out.append((f"idle RSS, {name}", f"≤ {limits[name]} MiB", f"{rss / 1024:.1f} MiB",
                        rss / 1024 <= limits[name]))
    return out


def kube_growth(outputs):
    """[(sandboxes, {list, snapshot (s), start (s), rss (KiB)})] of the Kubernetes runs."""
    found = []
    for key, count in KUBE_SIZES:
        text = outputs.get(key)
        if not text:
            continue
        start = re.search(r"^start to serving.*: ([\d.]+(?:ns|µs|ms|s))$", text, re.M)
        rss = rss_lines(text)
        found.append((count, {
            "list": p50_of(text, "ListSandboxes,"),
            "snapshot": p50_of(text, "WatchSandboxes snapshot"),
            "start": duration(start.group(1)) if start else None,
            "rss": rss[0][1] if rss else None,
        }))
    return found


def plots(outputs, processes):
    os.makedirs(PLOTS, exist_ok=True)
    made = []
    resolve = table_of(outputs, "gateway", "resolve")
    if resolve:
        p50 = series_by_path(resolve, 1, 3, lambda s: s * 1e6)
        p99 = series_by_path(resolve, 1, 4, lambda s: s * 1e6)
        series = [(f"{k} p50", v) for k, v in p50.items()] + [(f"{k} p99", v) for k, v in p99.items()]
        series = [(label.replace(" (TCP → UDS)", "").replace(" (UDS)", ""), pts) for label, pts in series]
        if line_chart(os.path.join(PLOTS, "resolve-latency.svg"),
                      "Resolve and bundle latency: gateway beside the driver", "callers", "µs", series, log_y=True):
            made.append(("resolve-latency.svg", "resolve and bundle latency percentiles against concurrency"))
        throughput = series_by_path(resolve, 1, 5)
        series = [(k.replace(" (TCP → UDS)", "").replace(" (UDS)", ""), v) for k, v in throughput.items()]
        if line_chart(os.path.join(PLOTS, "resolve-throughput.svg"),
                      "Resolves per second: gateway beside the driver", "callers", "calls/s", series):
            made.append(("resolve-throughput.svg", "throughput against concurrency"))
    create = table_of(outputs, "gateway", "sandbox create")
    if create:
        series = list(series_by_path(create, 1, 5).items())
        if line_chart(os.path.join(PLOTS, "create-throughput.svg"),
                      "Sandbox creates per second: gateway beside the driver", "callers", "creates/s", series):
            made.append(("create-throughput.svg", "create throughput against concurrency"))
    uds = columns(outputs.get("uds", ""), "callers")
    if uds:
        pts50 = [(number(r[0]), duration(r[2]) * 1e6) for r in uds]
        pts99 = [(number(r[0]), duration(r[3]) * 1e6) for r in uds]
        if line_chart(os.path.join(PLOTS, "uds-floor.svg"), "UDS round trip (the floor)", "callers", "µs",
                      [("p50", pts50), ("p99", pts99)], log_y=True):
            made.append(("uds-floor.svg", "the UDS floor's latency against concurrency"))
    growth = kube_growth(outputs)
    if len(growth) > 1:
        series = [(label, [(n, g[field] * 1e3) for n, g in growth if g.get(field)])
                  for label, field in [("ListSandboxes p50", "list"), ("Watch snapshot p50", "snapshot")]]
        if line_chart(os.path.join(PLOTS, "kube-growth.svg"),
                      "Kubernetes backend: List and Watch snapshot against sandboxes", "sandboxes", "ms",
                      series, log_y=True):
            made.append(("kube-growth.svg", "Kubernetes backend List and Watch against sandbox count"))
        if line_chart(os.path.join(PLOTS, "kube-rss.svg"), "Kubernetes backend: driver RSS against sandboxes",
                      "sandboxes", "MiB", [("RSS", [(n, g["rss"] / 1024) for n, g in growth if g.get("rss")])],
                      log_y=True):
            made.append(("kube-rss.svg", "the Kubernetes backend's RSS against sandbox count"))
    bars = [(f"{name}, idle", f["rss_kib"] / 1024) for name, f in processes.items() if f.get("rss_kib")]
    for key, binary in (("process", "compute-driver"), ("kube", "compute-driver (kube)"),
                        ("credentials", "credentials-driver")):
        for what, kib in rss_lines(outputs.get(key, "")):
            bars.append((f"{binary}: {what[:34]}", kib / 1024))
    if bar_chart(os.path.join(PLOTS, "rss.svg"), "Resident memory (MiB)", "MiB", bars):
        made.append(("rss.svg", "RSS idle, and with sandboxes"))
    return made


# ---------------------------------------------------------------- report

def commit():
    """HEAD's short hash, marked when the working tree has changes."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           text=True, stdout=subprocess.PIPE).stdout.strip()
    return f"{head} with uncommitted changes" if dirty else head


def report(outputs, processes, run):
    lines = [BEGIN, "", "## Every benchmark, one run (`python3 tests/bench/all.py`)", "",
             f"Run {run['at']} at {run['commit']}: {run['cores']} cores, "
             f"BENCH_SECONDS={run['seconds']}, {run['took'] / 60:.0f} minutes. Written by the "
             "command; edit the command, not this section.", "",
             "### The performance goals, from this run", "",
             "| goal | target | measured | met |", "|---|---|---|---|"]
    for goal, target, measured, met in goals(outputs, processes):
        lines.append(f"| {goal} | {target} | {measured} | {'yes' if met else 'no'} |")
    lines += ["", "### Plots", ""]
    for name, what in plots(outputs, processes):
        lines.append(f"![{what}](tests/bench/plots/{name})")
        lines.append("")
    growth = kube_growth(outputs)
    if growth:
        lines += ["### How the Kubernetes backend's figures grow", "",
                  "| sandboxes | start to serving | ListSandboxes p50 | Watch snapshot p50 | driver RSS |",
                  "|---:|---:|---:|---:|---:|"]
        for count, g in growth:
            def ms(v):
                if v is None:
                    return "-"
                return f"{v:.1f} s" if v >= 1 else f"{v * 1e3:.1f} ms"
            rss = "-" if g["rss"] is None else f"{g['rss'] / 1024:.1f} MiB"
            lines.append(f"| {count:,} | {ms(g['start'])} | {ms(g['list'])} | {ms(g['snapshot'])} | {rss} |")
        lines.append("")
    if processes:
        lines += ["### Start-up and idle RSS of the release binaries", "",
                  "| binary | spawn → /readyz 200 | idle RSS (4 s after ready) |", "|---|---:|---:|"]
        for name, figures in processes.items():
            rss = figures.get("rss_kib")
            lines.append(f"| {name} | {figures['start'] * 1e3:.0f} ms | "
                         f"{'-' if rss is None else f'{rss / 1024:.1f} MiB'} |")
        lines.append("")
    for key, crate, bench, env in BENCHES:
        if key not in outputs:
            continue
        shown = "".join(f"{k}={v} " for k, v in env.items())
        lines += [f"### `{shown}cargo bench -p {crate} --bench {bench}`", ""]
        tables = [(h, t) for h, t in sections(outputs[key]) if t]
        for heading, table in tables:
            lines += ([f"**{heading}**", ""] if heading else []) + table + [""]
        if not tables:
            printed = [line.rstrip() for line in outputs[key].splitlines() if line.strip()]
            lines += ["```text"] + printed + ["```", ""]
    lines.append(END)
    text = open(BENCHMARKS_MD).read()
    block = "\n".join(lines)
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(BENCHMARKS_MD, "w") as md:
        md.write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=[b[0] for b in BENCHES],
                        help="run only these benchmarks")
    parser.add_argument("--no-binaries", action="store_true", help="skip start-up and RSS")
    parser.add_argument("--replot", action="store_true",
                        help="run nothing: report and plot the saved output of the last run")
    parser.add_argument("--reuse", action="store_true",
                        help="report the saved output (target/bench-all/) of benchmarks not run now")
    args = parser.parse_args()
    seconds = os.environ.setdefault("BENCH_SECONDS", "3")
    started = time.monotonic()
    outputs = {}
    os.makedirs(SAVED, exist_ok=True)
    for key, crate, bench, env in BENCHES:
        saved = os.path.join(SAVED, f"{key}.txt")
        if args.replot or (args.only and key not in args.only):
            if (args.reuse or args.replot) and os.path.exists(saved):
                outputs[key] = open(saved).read()
            continue
        outputs[key] = run_bench(crate, bench, env)
        with open(saved, "w") as out:
            out.write(outputs[key])
    saved = os.path.join(SAVED, "binaries.json")
    if args.replot or args.no_binaries:
        processes = json.load(open(saved)) if args.replot and os.path.exists(saved) else {}
    else:
        processes = binaries()
        with open(saved, "w") as out:
            json.dump(processes, out)
    run_file = os.path.join(SAVED, "run.json")
    if args.replot and os.path.exists(run_file):
        run = json.load(open(run_file))
    else:
        run = {
            "at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit(),
            "cores": os.cpu_count(), "seconds": seconds, "took": time.monotonic() - started,
        }
        with open(run_file, "w") as out:
            json.dump(run, out)
    report(outputs, processes, run)
    print(f"BENCHMARKS.md updated; plots in {os.path.relpath(PLOTS, ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
