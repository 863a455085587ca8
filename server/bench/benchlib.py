#!/usr/bin/env python3
"""Process helpers for server/bench/compare.sh (standard library only).

  benchlib.py free-ports N
      N distinct free TCP ports on 127.0.0.1, one per line.
  benchlib.py launch --server NAME --label L --port P --domain D --log FILE
                     --pidfile FILE [--comm beam.smp] [--timeout S] -- CMD...
      Spawn CMD (detached: its own session, stdin from /dev/null, output to
      FILE), then poll-connect to 127.0.0.1:P sending a stream header until
      `<stream:features` arrives. Prints one JSON line (scenario "startup"):
      startup_ms (spawn to first stream features), rss_kib right then, the
      server's PID (with --comm: the descendant process of that name, e.g.
      Erlang's beam.smp behind ejabberdctl) and the spawned wrapper's PID.
      Writes "PID WRAPPER_PID" to the pidfile. Exits 1 (and kills what it
      spawned) if the server dies or does not answer in time.
  benchlib.py stop [--timeout S] PID...
      SIGTERM each PID, wait until gone (or a zombie), SIGKILL after S s.
  benchlib.py package-pids
      PIDs of reference servers started by the Debian packages (Prosody
      without --config; ejabberd's beam.smp on /var/lib/ejabberd), one a line.
  benchlib.py machine
      One JSON line describing this machine (CPU model, cores, memory, kernel).
  benchlib.py rss PID
      VmRSS of PID in KiB.
  benchlib.py features --port P [--domain D]
      Connect once and print the stream features (a smoke check).
  benchlib.py register --port P [--domain D] --prefix u --first 0 --count N
                       --password PW [--connections 8]
      XEP-0077 in-band registration of PREFIX{first..first+count-1} over
      plain TCP (a fallback and a check of the servers' registration
      settings; "conflict" counts as already registered). Prints a summary.
"""

import argparse
import json
import re
import os
import signal
import socket
import subprocess
import sys
import time


def free_ports(n):
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            socks.append(s)
            if port not in ports:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def stream_header(domain):
    return (
        "<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>" % domain
    ).encode()


def try_features(port, domain, timeout=2.0):
    """One attempt: the bytes up to the end of <stream:features>, or None."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return None
    try:
        s.settimeout(timeout)
        s.sendall(stream_header(domain))
        buf = b""
        while b"<stream:features" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return None
            buf += chunk
        first = time.monotonic()
        deadline = first + timeout
        while b"</stream:features>" not in buf and time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
        try:
            s.sendall(b"</stream:stream>")
        except OSError:
            pass
        return first, buf
    except OSError:
        return None
    finally:
        s.close()


def read_status(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_stat(pid):
    """(comm, state, ppid) or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    lp, rp = data.index("("), data.rindex(")")
    rest = data[rp + 2:].split()
    return data[lp + 1:rp], rest[0], int(rest[1])


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[1] not in ("Z", "X")


def descendants(root):
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st:
            children.setdefault(st[2], []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def find_comm(root, comm):
    for p in [root] + descendants(root):
        st = proc_stat(p)
        if st and st[0] == comm:
            return p
    return None


def stop(pids, timeout):
    pids = [p for p in pids if p > 1 and alive(p)]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    for p in pids:
        if alive(p):
            print("benchlib: PID %d ignored SIGTERM for %ss; SIGKILL" % (p, timeout),
                  file=sys.stderr)
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def register_range(port, domain, prefix, indexes, password, out):
    """Register accounts on one unauthenticated stream, one IQ at a time."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    buf = b""

    def until(pattern):
        nonlocal buf
        while True:
            m = re.search(pattern, buf, re.S)
            if m:
                buf = buf[m.end():]
                return m
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("connection closed; got %r" % buf[-300:])
            buf += chunk

    try:
        s.sendall(stream_header(domain))
        until(rb"</stream:features>")
        for i in indexes:
            user = "%s%d" % (prefix, i)
            s.sendall((
                "<iq type='set' id='r%d'><query xmlns='jabber:iq:register'>"
                "<username>%s</username><password>%s</password></query></iq>"
                % (i, user, password)).encode())
            m = until(rb"<iq\b[^>]*?id=['\"]r%d['\"][^>]*?(/>|>.*?</iq>)" % i)
            text = m.group(0)
            if b"type='result'" in text or b'type="result"' in text:
                out["created"] += 1
            elif b"conflict" in text:
                out["existed"] += 1
            else:
                out["failed"] += 1
                if out["failed"] <= 3:
                    print("benchlib: registering %s: %s" % (user, text[:400].decode(errors="replace")),
                          file=sys.stderr)
        s.sendall(b"</stream:stream>")
    finally:
        s.close()


def register(args):
    import threading
    out = {"created": 0, "existed": 0, "failed": 0}
    idx = list(range(args.first, args.first + args.count))
    n = max(1, min(args.connections, len(idx)))
    chunks = [idx[k::n] for k in range(n)]
    errors = []

    def work(chunk):
        try:
            register_range(args.port, args.domain, args.prefix, chunk, args.password, out)
        except OSError as e:
            errors.append(str(e))

    t0 = time.monotonic()
    threads = [threading.Thread(target=work, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["seconds"] = round(time.monotonic() - t0, 2)
    out["errors"] = errors[:3]
    print(json.dumps(out))
    return 0 if not errors and out["failed"] == 0 else 1


def launch(args):
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    log = open(args.log, "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=args.cwd, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = t0 + args.timeout
    got = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        got = try_features(args.port, args.domain)
        if got:
            break
        time.sleep(0.002)
    if not got:
        why = ("exited with status %s" % proc.returncode if proc.poll() is not None
               else "gave no stream features within %ss" % args.timeout)
        print("benchlib: %s %s; log %s:" % (args.server, why, args.log), file=sys.stderr)
        try:
            with open(args.log, "rb") as f:
                sys.stderr.write(f.read()[-3000:].decode(errors="replace") + "\n")
        except OSError:
            pass
        stop(descendants(proc.pid) + [proc.pid], 5)
        return 1
    first, features = got
    startup_ms = (first - t0) * 1000.0
    pid = proc.pid
    if args.comm:
        pid = find_comm(proc.pid, args.comm) or proc.pid
    rss = read_status(pid, "VmRSS")
    with open(args.pidfile, "w") as f:
        f.write("%d %d\n" % (pid, proc.pid))
    print(json.dumps({
        "server": args.server, "label": args.label, "scenario": "startup",
        "startup_ms": round(startup_ms, 1), "rss_kib": rss,
        "pid": pid, "wrapper_pid": proc.pid,
        "features": features.decode(errors="replace")[-600:],
    }))
    return 0


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def package_pids():
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        pid = int(name)
        argv = cmdline(pid)
        if not argv or not alive(pid):
            continue
        joined = " ".join(argv)
        if any(a.endswith("/prosody") for a in argv[:2]) and "--config" not in argv \
                and not any(a.startswith("--config=") for a in argv):
            out.append(pid)
        elif os.path.basename(argv[0]) == "beam.smp" and '"/var/lib/ejabberd"' in joined:
            out.append(pid)
        elif os.path.basename(argv[0]) == "beam.smp" and "/var/lib/ejabberd" in joined \
                and "-mnesia" in joined:
            out.append(pid)
    return out


def machine():
    info = {"scenario": "machine"}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["nproc"] = os.cpu_count()
    try:
        info["nproc_available"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["mem_total_mib"] = int(line.split()[1]) // 1024
    except OSError:
        pass
    u = os.uname()
    info["kernel"] = "%s %s %s" % (u.sysname, u.release, u.machine)
    import resource
    info["nofile_limit"] = list(resource.getrlimit(resource.RLIMIT_NOFILE))
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd_name", required=True)
    p = sub.add_parser("free-ports")
    p.add_argument("n", type=int)
    p = sub.add_parser("launch")
    p.add_argument("--server", required=True)
    p.add_argument("--label", default="")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--domain", default="localhost")
    p.add_argument("--log", required=True)
    p.add_argument("--pidfile", required=True)
    p.add_argument("--comm")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--cwd")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p = sub.add_parser("stop")
    p.add_argument("--timeout", type=float, default=15)
    p.add_argument("pids", type=int, nargs="+")
    sub.add_parser("package-pids")
    sub.add_parser("machine")
    p = sub.add_parser("rss")
    p.add_argument("pid", type=int)
    p = sub.add_parser("features")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--domain", default="localhost")
    p = sub.add_parser("register")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--domain", default="localhost")
    p.add_argument("--prefix", default="u")
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--password", default="pw")
    p.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    if args.cmd_name == "free-ports":
        print("\n".join(str(p) for p in free_ports(args.n)))
    elif args.cmd_name == "launch":
        return launch(args)
    elif args.cmd_name == "stop":
        stop(args.pids, args.timeout)
    elif args.cmd_name == "package-pids":
        for p in package_pids():
            print(p)
    elif args.cmd_name == "machine":
        print(json.dumps(machine()))
    elif args.cmd_name == "rss":
        print(read_status(args.pid, "VmRSS"))
    elif args.cmd_name == "features":
        got = try_features(args.port, args.domain)
        if not got:
            print("no stream features", file=sys.stderr)
            return 1
        print(got[1].decode(errors="replace"))
    elif args.cmd_name == "register":
        return register(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
