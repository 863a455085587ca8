#!/usr/bin/env python3
"""Comparison table for server/bench/compare.sh results (standard library only).

  report.py RESULTS.jsonl [--markdown]

Reads the JSON lines (one "machine" line, "startup" lines from every server
start, one line per vireo-bench run) and prints, per case and metric, each
server's value and the ratios Vireo/Prosody and Vireo/ejabberd, then the
issue-3 bars that the data allows checking. "better" says which direction
is good for the metric (higher or lower), so a ratio can be read at once.
"""

import json
import statistics
import sys

SERVERS = ["vireo", "vireo-t1", "vireo-defaults", "vireo-nomam", "vireo-pg", "vireo-pg-nomam",
           "prosody", "ejabberd"]
ERRORS = []  # "case on server: error" of failed runs, printed under the table

# Preferred metrics in display order; other numeric fields follow if they
# look like results. (name, better: "high" | "low" | "").
PREFERRED = [
    ("msgs_per_s", "high"), ("deliveries_per_s", "high"), ("logins_per_s", "high"), ("presence_per_s", "high"),
    ("notifications_per_s", "high"), ("server_cpu_us_per_notification", "low"),
    ("notifications_delivered", ""), ("notifications_expected", ""),
    ("probe_rest_p50_ms", "low"), ("probe_rest_max_ms", "low"),
    ("probe_p50_ms", "low"), ("probe_p99_ms", "low"), ("probe_max_ms", "low"),
    ("p50_ms", "low"), ("p99_ms", "low"), ("max_ms", "low"),
    ("server_cpu_us_per_msg", "low"), ("db_cpu_us_per_msg", "low"), ("server_cpu_us_per_delivery", "low"), ("server_cpu_us_per_login", "low"),
    ("server_cpu_us_per_presence", "low"), ("server_cpu_cores", ""),
    ("msgs_per_s_total", "high"), ("server_cpu_us_per_msg_total", "low"),
    ("kib_per_session", "low"), ("server_rss_before_kib", "low"), ("server_rss_after_kib", "low"),
    ("server_rss_peak_kib", "low"), ("server_rss_peak_after_leaving_kib", "low"),
    ("sessions", "high"), ("logins", ""), ("failures", "low"), ("sent", ""), ("delivered", ""),
    ("duplicates", "low"), ("misrouted", "low"), ("errors", "low"),
    ("presence_delivered", ""), ("presence_expected", ""), ("steady_s", ""), ("duration_s", ""),
]
SKIP = {"pid", "wrapper_pid", "port", "threads", "pairs", "window", "count", "accounts",
        "concurrency", "users", "contacts", "idle", "items", "rooms", "occupants"}


def better_of(name):
    for n, b in PREFERRED:
        if n == name:
            return b
    if name.endswith("_per_s"):
        return "high"
    if name.endswith("_ms") or name.startswith("server_cpu") or "kib" in name or "rss" in name:
        return "low"
    return ""


def looks_like_result(name):
    return name not in SKIP and (name.endswith("_per_s") or name.startswith("server_cpu_us"))


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) >= 100):
        return "{:,}".format(int(v))
    if abs(v) >= 100:
        return "{:,.0f}".format(v)
    if abs(v) >= 10:
        return "{:.1f}".format(v)
    return "{:.2f}".format(v)


def ratio(a, b):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
        return "-"
    return "{:.2f}x".format(a / b)


def load(path):
    recs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                recs.append(json.loads(line))
            except ValueError:
                print("report.py: skipping a line that is not JSON: %s" % line[:120], file=sys.stderr)
    return recs


def build(recs):
    machine = next((r for r in recs if r.get("scenario") == "machine"), {})
    startups = {}
    cases = {}      # case -> server -> record (the last run wins: reruns are longer)
    order = []
    for r in recs:
        if r.get("scenario") == "machine":
            continue
        srv = r.get("server")
        if r.get("scenario") == "startup":
            if r.get("case") != "provision":  # first start on an empty store: not comparable
                startups.setdefault(srv, []).append(r)
            continue
        case = r.get("case") or r.get("label") or r.get("scenario")
        if case not in cases:
            cases[case] = {}
            order.append(case)
        cases[case][srv] = r
    rows = []  # (case, metric, better, {server: value})
    start_vals = {}
    for srv, ss in startups.items():
        ms = [s["startup_ms"] for s in ss if isinstance(s.get("startup_ms"), (int, float))]
        rss = [s["rss_kib"] for s in ss if isinstance(s.get("rss_kib"), (int, float))]
        start_vals[srv] = (statistics.median(ms) if ms else None,
                           statistics.median(rss) if rss else None, len(ss))
    if start_vals:
        rows.append(("startup", "start_to_features_ms (median)", "low",
                     {s: v[0] for s, v in start_vals.items()}))
        rows.append(("", "rss_kib_after_start (median)", "low",
                     {s: v[1] for s, v in start_vals.items()}))
        rows.append(("", "starts measured", "", {s: v[2] for s, v in start_vals.items()}))
    for case in order:
        per = cases[case]
        names = []
        for n, _ in PREFERRED:
            if any(isinstance(r.get(n), (int, float)) for r in per.values()):
                names.append(n)
        extra = sorted({k for r in per.values() for k, v in r.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)
                        and k not in names and looks_like_result(k)})
        first = True
        for srv, r in per.items():
            if r.get("error") or r.get("ok") is False:
                rows.append((case if first else "", "FAILED: " + srv, "", {srv: None}))
                ERRORS.append("%s on %s: %s" % (case, srv, r.get("error")))
                first = False
        for n in names + extra:
            rows.append((case if first else "", n, better_of(n),
                         {s: per[s].get(n) for s in per}))
            first = False
    return machine, rows, cases, start_vals


def check_bars(cases, start_vals):
    """The issue-3 bars the data can check: (bar, verdict, detail)."""
    out = []

    def get(case_prefix, srv, key):
        for case, per in cases.items():
            if case == case_prefix and srv in per and isinstance(per[srv].get(key), (int, float)):
                return per[srv][key]
        return None

    idle_cases = sorted((c for c in cases if c.startswith("idle-") and c[5:].isdigit()),
                        key=lambda c: int(c[5:]))
    big = [c for c in idle_cases if c != "idle-15000"]
    if big:
        c = big[-1]
        v, p, e = (get(c, s, "kib_per_session") for s in ("vireo", "prosody", "ejabberd"))
        for other, name in ((p, "Prosody"), (e, "ejabberd")):
            if v is not None and other is not None:
                out.append(("%s KiB/session <= 1/5 of %s" % (c, name),
                            "PASS" if v <= other / 5 else "FAIL", "%s vs %s" % (fmt(v), fmt(other))))
    c = "messages-fresh"
    v, p, e = (get(c, s, "msgs_per_s") for s in ("vireo", "prosody", "ejabberd"))
    for other, k, name in ((p, 3.0, "Prosody"), (e, 1.5, "ejabberd")):
        if v is not None and other is not None:
            out.append(("messages/s >= %.1fx %s" % (k, name), "PASS" if v >= k * other else "FAIL",
                        "%s vs %s (%.2fx)" % (fmt(v), fmt(other), v / other if other else 0)))
    v99 = get(c, "vireo", "p99_ms")
    for s in ("prosody", "ejabberd"):
        o99 = get(c, s, "p99_ms")
        if v99 is not None and o99 is not None:
            out.append(("messages p99 <= %s's" % s, "PASS" if v99 <= o99 else "FAIL",
                        "%s ms vs %s ms" % (fmt(v99), fmt(o99))))
    # compare.sh --archiving: every server archives every message.
    c = "mam-messages-fresh"
    v, p, e = (get(c, s, "msgs_per_s") for s in ("vireo", "prosody", "ejabberd"))
    for other, k, name in ((p, 2.0, "Prosody"), (e, None, "ejabberd")):
        if v is not None and other is not None:
            out.append(("archiving: messages/s >= %.1fx %s" % (k, name) if k
                        else "(info) archiving: messages/s vs %s" % name,
                        ("PASS" if v >= k * other else "FAIL") if k else "-",
                        "%s vs %s (%.2fx)" % (fmt(v), fmt(other), v / other if other else 0)))
    lc = next((c for c in cases if c.startswith("login-")), None)
    if lc:
        v, p = get(lc, "vireo", "logins_per_s"), get(lc, "prosody", "logins_per_s")
        if v is not None and p is not None:
            out.append(("logins/s >= 2x Prosody", "PASS" if v >= 2 * p else "FAIL",
                        "%s vs %s" % (fmt(v), fmt(p))))
        for key in ("server_cpu_us_per_login",):
            v, p = get(lc, "vireo", key), get(lc, "prosody", key)
            if v is not None and p is not None:
                out.append(("CPU per login <= 1/2 Prosody's", "PASS" if v <= p / 2 else "FAIL",
                            "%s us vs %s us" % (fmt(v), fmt(p))))
    if "vireo" in start_vals:
        ms, rss, _ = start_vals["vireo"]
        if rss is not None:
            out.append(("fresh Vireo RSS < 10 MiB", "PASS" if rss < 10 * 1024 else "FAIL",
                        "%s KiB" % fmt(rss)))
        if ms is not None:
            out.append(("Vireo accepting (features) within 50 ms", "PASS" if ms < 50 else "FAIL",
                        "%s ms" % fmt(ms)))
    if "idle-15000" in cases and "vireo" in cases["idle-15000"]:
        r = cases["idle-15000"]["vireo"]
        out.append(("15,000 idle sessions without errors",
                    "FAIL" if r.get("error") or r.get("ok") is False or (r.get("errors") or 0) > 0
                    else "PASS",
                    "sessions=%s errors=%s" % (r.get("sessions"), r.get("errors"))))
    f, h = get("messages-fresh", "vireo", "msgs_per_s"), get("messages-idle15000", "vireo", "msgs_per_s")
    if f is not None and h is not None:
        out.append(("messages/s with 15,000 idle >= 90% of fresh", "PASS" if h >= 0.9 * f else "FAIL",
                    "%s vs %s (%.0f%%)" % (fmt(h), fmt(f), 100.0 * h / f)))
    f, t1 = get("messages-fresh", "vireo", "msgs_per_s"), get("messages-fresh", "vireo-t1", "msgs_per_s")
    if f is not None and t1 is not None:
        out.append(("(info) Vireo messages/s, 2 vs 1 executor threads", "-",
                    "%s vs %s (%.2fx)" % (fmt(f), fmt(t1), f / t1 if t1 else 0)))
    return out


def table(headers, rows, markdown):
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)),
           "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    markdown = "--markdown" in sys.argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    machine, rows, cases, start_vals = build(load(args[0]))
    present = [s for s in SERVERS if any(s in r[3] for r in rows)]
    if machine:
        print("machine: %s; %s cores; %s MiB RAM; %s; mode %s; vireo %s; prosody %s; ejabberd %s; "
              "SCRAM iterations %s" % (
                  machine.get("cpu"), machine.get("nproc"), machine.get("mem_total_mib"),
                  machine.get("kernel"), machine.get("mode"), machine.get("vireo_rev"),
                  machine.get("prosody_version", "-"), machine.get("ejabberd_version", "-"),
                  machine.get("scram_iterations")))
    headers = ["case", "metric", "better"] + present
    if "vireo" in present and "prosody" in present:
        headers.append("V/P")
    if "vireo" in present and "ejabberd" in present:
        headers.append("V/E")
    out_rows = []
    for case, metric, better, vals in rows:
        r = [case, metric, better] + [fmt(vals.get(s)) for s in present]
        counted = metric == "starts measured"
        if "V/P" in headers:
            r.append("" if counted else ratio(vals.get("vireo"), vals.get("prosody")))
        if "V/E" in headers:
            r.append("" if counted else ratio(vals.get("vireo"), vals.get("ejabberd")))
        out_rows.append(r)
    print(table(headers, out_rows, markdown))
    if ERRORS:
        print()
        for e in ERRORS:
            print("FAILED RUN: " + e)
    bars = check_bars(cases, start_vals)
    if bars:
        print()
        print(table(["bar (issue 3)", "verdict", "detail"], [list(b) for b in bars], markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
