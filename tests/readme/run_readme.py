#!/usr/bin/env python3
"""Runs every shell command in README.md as written, the way a reader follows it.

The README's ```sh blocks run in order, one bash session per section (## or ###
heading), in a copy of the checkout (so its `cargo build` commands build there and
never touch the build the tests run from). An HTML comment right before a block says
how it runs:

  (none)                                   run it; it must exit 0
  <!-- readme-test: start, ready when `CMD` -->
                                           start it in the background (a server the
                                           reader leaves running in another terminal),
                                           then wait until CMD succeeds (while it
                                           runs, up to READY_WAIT seconds)
  <!-- readme-test: skip: REASON -->       not run here, for the reason given

A ```yaml block with `file=PATH` in its info string must equal that file. The one
substitution: `/tmp/sd`, the README's scratch directory, becomes a fresh one, which is
also each section's TMPDIR (so `gateway-shim dev` keeps its runtime directory there). At the
end of a section its background processes get SIGINT (then SIGKILL after 20 s).

Usage: run_readme.py [--repo DIR] [--keep]
"""

import argparse
import filecmp
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

MARKER = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")
READY = re.compile(r"start, ready when `(.+)`$")
# Seconds a started command may take to become ready (below the section's 30 minutes).
READY_WAIT = 1500


def blocks(readme):
    """Yields (section, line, info, text, marker) for every fenced block; a marker is
    the readme-test comment on the last non-empty line before the fence."""
    section, marker, lines = "top", None, readme.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        found = MARKER.search(line)
        if line.startswith("```"):
            info, start, body = line[3:].strip(), i + 1, []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            yield section, start, info, "\n".join(body) + "\n", marker
            marker = None
        elif found:
            marker = found.group(1)
        elif line.strip():
            marker = None
            if line.startswith("#"):
                section = line.lstrip("# ").strip()
        i += 1


def copy_checkout(repo, dest):
    files = subprocess.run(
        ["git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = os.path.join(repo, name)
        if not os.path.lexists(source):
            continue  # deleted in the work tree
        target = os.path.join(dest, name)
        # A reused copy changes only where the checkout did (new mtime: cargo rebuilds).
        if os.path.exists(target) and filecmp.cmp(source, target, shallow=False):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(source, target, follow_symlinks=False)


def stop_group(process):
    for sig, wait in ((signal.SIGINT, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + wait
        while time.time() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def script_for(runnable, scratch):
    parts = ["set -euo pipefail"]
    for line, text, marker in runnable:
        text = text.replace("/tmp/sd", scratch)
        parts.append(f"echo '== README line {line}' >&2")
        ready = READY.match(marker or "")
        if ready:
            check = ready.group(1).replace("/tmp/sd", scratch)
            quoted = check.replace("'", "")
            # The started command may build the workspace first (several minutes on a
            # clean copy of a slow machine): wait while it runs, up to READY_WAIT, and
            # fail at once, with its status, if it exits before it is ready.
            parts.append("(\n" + text + ") &\nstarted_pid=$!")
            parts.append(
                f"for _ in $(seq {READY_WAIT * 2}); do\n"
                f"  if ( {check} ) >/dev/null 2>&1; then break; fi\n"
                "  if ! kill -0 \"$started_pid\" 2>/dev/null; then\n"
                "    status=0; wait \"$started_pid\" || status=$?\n"
                "    echo \"not ready: the started command exited (status $status) before this succeeded:\" >&2\n"
                f"    echo '  {quoted}' >&2; exit 1\n"
                "  fi\n"
                "  sleep 0.5\n"
                "done\n"
                f"( {check} ) >/dev/null || {{ echo 'not ready after {READY_WAIT} s: {quoted}' >&2; exit 1; }}")
        else:
            parts.append(text)
    parts.append("echo '== section done' >&2")
    return "\n".join(parts) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    parser.add_argument("--keep", action="store_true", help="keep the copy (and its target/) afterwards")
    parser.add_argument("--work", help="the copy's directory (reused, kept: for iterating on the README)")
    args = parser.parse_args()
    repo = os.path.abspath(args.repo)
    with open(os.path.join(repo, "README.md")) as f:
        readme = f.read()

    sections, failures, skipped = {}, [], []
    for section, line, info, text, marker in blocks(readme):
        words = info.split()
        if words[:1] == ["yaml"]:
            for word in words[1:]:
                if word.startswith("file="):
                    path = os.path.join(repo, word[5:])
                    with open(path) as f:
                        if f.read() != text:
                            failures.append(f"README line {line}: the yaml block differs from {word[5:]}")
            continue
        if words[:1] != ["sh"]:
            continue
        if marker and marker.startswith("skip"):
            skipped.append(f"line {line}: {marker}")
            continue
        if marker and not READY.match(marker):
            failures.append(f"README line {line}: unknown marker {marker!r}")
            continue
        sections.setdefault(section, []).append((line, text, marker))

    work = args.work or tempfile.mkdtemp(prefix="readme-", dir=os.environ.get("TMPDIR", "/tmp"))
    if args.work:
        args.keep = True
        os.makedirs(work, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="rd", dir="/tmp")
    try:
        copy_checkout(repo, work)
        for section, runnable in sections.items():
            shutil.rmtree(scratch, ignore_errors=True)
            os.makedirs(scratch, mode=0o700)
            started = time.time()
            # Output to a file: servers left in the background keep a pipe open.
            log_path = os.path.join(work, "readme-section.log")
            with open(log_path, "w") as log:
                # TMPDIR: where `gateway-shim dev` keeps its runtime directory, so a
                # reader's own dev suite is neither used nor disturbed.
                env = dict(os.environ, TMPDIR=scratch, CARGO_INCREMENTAL="0")
                process = subprocess.Popen(["bash", "-c", script_for(runnable, scratch)], cwd=work,
                                           stdout=log, stderr=subprocess.STDOUT, env=env,
                                           start_new_session=True)
                try:
                    process.wait(timeout=1800)
                except subprocess.TimeoutExpired:
                    log.write("(timed out after 30 min)\n")
                finally:
                    stop_group(process)
            with open(log_path, errors="replace") as log:
                output = log.read()
            lines = ", ".join(str(line) for line, _, _ in runnable)
            if process.returncode != 0:
                failures.append(f"section {section!r} (README lines {lines}) failed:\n{output[-6000:]}")
                print(f"FAIL: {section}: lines {lines}")
            else:
                print(f"ok: {section}: lines {lines} ({time.time() - started:.0f} s)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    for entry in skipped:
        print(f"skipped {entry}")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
