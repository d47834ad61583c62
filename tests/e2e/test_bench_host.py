"""bench/host's route, end to end on a small model: prepare (compile
--emit obj, link bench/hostrun.c, kernel names), the timing driver's CSV /
JSON / profile and its usage errors, run (mambac at 1 and 2 threads and the
PyTorch sweep, eager and torch.compile where the torch has it) and report
(CSV, JSON, markdown, chart).

Takes: the mambac executable (argv[1]).
Produces: pass/fail lines; scratch files in a work dir (e2e_common).
Owns: that work dir.
"""
import csv
import json
import os
import subprocess
import sys

from e2e_common import REPO, Test, write_config

HOST = os.path.join(REPO, "bench", "host")


def host(args, timeout=240):
    """bench/host with this Python (the one with torch): (rc, stdout, stderr)."""
    try:
        p = subprocess.run([sys.executable, HOST] + [str(a) for a in args], capture_output=True,
                           text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return "timeout", "", ""


def prog(argv, timeout=120):
    try:
        p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return "timeout", "", ""


def one_line_error(t, label, res, rc, words):
    got_rc, _, err = res
    lines = err.strip().splitlines()
    t.check(got_rc == rc and len(lines) == 1 and "Traceback" not in err and
            all(w in err for w in words),
            "%s: rc %s (want %d), stderr %r" % (label, got_rc, rc, err.strip()[:300]))


def check_driver(t, prep, o):
    exe = os.path.join(prep, o["driver"])
    rc, out, err = prog([exe, "--threads", "1,2", "--runs", "3", "--warmup", "1"])
    rows = list(csv.DictReader(out.splitlines())) if rc == 0 else []
    ok = rc == 0 and [r["threads"] for r in rows] == ["1", "2"]
    t.check(ok, "%s: a CSV row per thread count%s" % (
        o["name"], "" if ok else " (rc %s, %s)" % (rc, err.strip()[-300:])))
    for r in rows:
        ok = (r["model"] == "micro" and r["precision"] == o["precision"] and
              int(r["batch"]) == o["batch"] and r["height"] == r["width"] == "32" and
              r["runs"] == "3" and r["finite"] == "1" and
              0 < float(r["min_ms"]) <= float(r["median_ms"]) <= float(r["max_ms"]) and
              abs(float(r["img_s"]) - o["batch"] * 1e3 / float(r["median_ms"])) <=
              1e-3 * float(r["img_s"]) + 1e-3 and float(r["subnormal_ppm"]) < 100 and
              float(r["max_rel_diff"]) < 1e-6 and r["weights"] == "synthetic")
        t.check(ok, "%s %s threads: finite output, no subnormal activations, the same output as "
                "at 1 thread, timings ordered, img/s = batch/median%s" % (
                    o["name"], r["threads"], "" if ok else ": %s" % dict(r)))
    if rows:
        t.check(rows[0]["out_sum"] == rows[1]["out_sum"],
                "%s: same output at 1 and 2 threads (%s, %s)" % (
                    o["name"], rows[0]["out_sum"], rows[1]["out_sum"]))
    rc, out, _ = prog([exe, "--threads", "2", "--runs", "2", "--format", "json"])
    try:
        j = json.loads(out)
    except ValueError:
        j = {}
    ok = rc == 0 and j.get("batch") == o["batch"] and len(j.get("rows", [])) == 1 and \
        j["rows"][0]["finite"] is True and j["rows"][0]["img_s"] > 0
    t.check(ok, "%s: --format json%s" % (o["name"], "" if ok else " (%s)" % out.strip()[:300]))


def check_profile(t, w, prep, o):
    exe = os.path.join(prep, o["driver"])
    pcsv = os.path.join(w, "prof.csv")
    rc, _, err = prog([exe, "--threads", "1,2", "--runs", "2", "--profile", "3", "--profile-csv",
                       pcsv, "--kernels", os.path.join(prep, o["kernels"])])
    rows = list(csv.DictReader(open(pcsv))) if rc == 0 and os.path.exists(pcsv) else []
    for th in ("1", "2"):
        sub = [r for r in rows if r["threads"] == th]
        whole = [r for r in sub if r["k"] == "-1"]
        ks = [r for r in sub if r["k"] != "-1"]
        named = all(r["name"] and not r["name"].startswith("k") and r["kind"] for r in ks)
        total = sum(float(r["ms_per_run"]) for r in ks)
        ok = (len(whole) == 1 and len(ks) == o["nkernels"] and named and
              0 < total <= float(whole[0]["ms_per_run"]) * 1.05 and
              sorted(int(r["k"]) for r in ks) == list(range(o["nkernels"])))
        t.check(ok, "profile at %s threads: the whole run and each of the %d kernels, named, "
                "kernels' time within the run's%s" % (
                    th, o["nkernels"], "" if ok else " (%d rows, rc %s %s)" % (
                        len(sub), rc, err.strip()[-200:])))
    # without names: k<i>
    rc, _, _ = prog([exe, "--threads", "1", "--runs", "1", "--profile", "1", "--profile-csv", pcsv])
    rows = list(csv.DictReader(open(pcsv))) if rc == 0 else []
    t.check(rc == 0 and any(r["name"] == "k0" for r in rows),
            "profile without --kernels names kernels k<i>")


def check_real_weights(t, w, prep, build, o):
    """--weights: the real blob (kept by prepare --keep-weights), checked."""
    exe = os.path.join(prep, o["driver"])
    wfile = os.path.join(build, "host-work", o["name"] + ".weights")
    rc, out, err = prog([exe, "--threads", "1,2", "--runs", "2", "--weights", wfile])
    rows = list(csv.DictReader(out.splitlines())) if rc == 0 else []
    ok = len(rows) == 2 and all(r["weights"] == "file" and r["finite"] == "1" and
                                float(r["max_rel_diff"]) < 1e-6 for r in rows)
    t.check(ok, "--weights X.weights: the real weights, the same output at 1 and 2 threads%s" % (
        "" if ok else " (rc %s: %s)" % (rc, err.strip()[-300:])))
    blob = open(wfile, "rb").read()
    short = os.path.join(w, "short.weights")
    with open(short, "wb") as f:
        f.write(blob[:-4])
    one_line_error(t, "--weights of the wrong size", prog([exe, "--weights", short]), 1,
                   [short, "%d bytes" % len(blob)])
    other = os.path.join(w, "other.weights")
    with open(other, "wb") as f:
        f.write(blob[:100] + bytes([blob[100] ^ 1]) + blob[101:])
    one_line_error(t, "--weights of another model", prog([exe, "--weights", other]), 1,
                   [other, "hash"])


def check_driver_errors(t, w, prep, o):
    exe = os.path.join(prep, o["driver"])
    one_line_error(t, "--threads 0", prog([exe, "--threads", "0"]), 2, ["--threads"])
    one_line_error(t, "--threads 1,x", prog([exe, "--threads", "1,x"]), 2, ["--threads"])
    one_line_error(t, "--runs 0", prog([exe, "--runs", "0"]), 2, ["--runs"])
    one_line_error(t, "--profile without a file", prog([exe, "--profile", "2"]), 2,
                   ["--profile-csv"])
    one_line_error(t, "--format xml", prog([exe, "--format", "xml"]), 2, ["--format"])
    one_line_error(t, "unknown option", prog([exe, "--bogus", "1"]), 2, ["--bogus"])
    missing = os.path.join(w, "no-such.tsv")
    one_line_error(t, "--kernels missing file", prog([exe, "--kernels", missing, "--runs", "1"]),
                   1, [missing])
    bad = os.path.join(w, "bad.tsv")
    with open(bad, "w") as f:
        f.write("0\tgemm\tfc1\t100\nnot a kernel line\n")
    one_line_error(t, "--kernels malformed", prog([exe, "--kernels", bad, "--runs", "1"]), 1,
                   [bad, "line 2"])
    rc, out, _ = prog([exe, "--help"])
    t.check(rc == 0 and "synthetic weights" in out and "--profile" in out, "--help")


def main():
    t = Test("bench_host")
    w = t.work
    cfg = write_config(t.path("micro.yaml"), 16, [1, 1, 1, 1], mlp_ratio=4.0, name="micro")
    prep, build = t.path("prep"), t.path("build")

    rc, out, err = host(["--build-dir", build, "prepare", "--config", cfg, "--size", 32,
                         "--batches", "1,2", "--mambac", t.mambac, "--dir", prep,
                         "--keep-weights"])
    man = json.load(open(os.path.join(prep, "manifest.json"))) if rc == 0 else {}
    objs = {(o["precision"], o["batch"]): o for o in man.get("objects", [])}
    ok = rc == 0 and ("fp32", 1) in objs and ("fp32", 2) in objs
    t.check(ok, "prepare: fp32 drivers for batch 1 and 2%s" % (
        "" if ok else " (rc %s: %s)" % (rc, err.strip()[-500:])))
    if rc != 0:
        t.finish()
    skipped = {s["precision"] for s in man["skipped"]}
    t.check(all(("bf16", b) in objs for b in (1, 2)) or
            ("bf16" in skipped and all(s["why"] for s in man["skipped"])),
            "prepare: bf16 drivers, or bf16 listed as skipped with mambac's reason (%s)" %
            man["skipped"])
    for o in objs.values():
        names = open(os.path.join(prep, o["kernels"])).read().splitlines() if o["kernels"] else []
        t.check(o["torch_model"] == "16:1,1,1,1" and o["static"] in (True, False) and
                len(names) == o["nkernels"] > 10 and o["check_ms_here"] > 0 and
                os.path.getsize(os.path.join(build, "host-work", o["name"] + ".weights")) ==
                o["weights_bytes"] and not os.path.exists(os.path.join(prep, o["name"] + ".weights")),
                "prepare %s: torch peer, %d named kernels, ran here, weights kept out of the carried "
                "folder" % (
                    o["name"], o["nkernels"]))
    size = sum(os.path.getsize(os.path.join(prep, f)) for f in os.listdir(prep))
    t.check(size < 16 << 20, "prepared folder is small enough to carry (%.1f MB)" % (size / 1e6))

    o1 = objs[("fp32", 1)]
    check_driver(t, prep, o1)
    if ("bf16", 2) in objs:
        check_driver(t, prep, objs[("bf16", 2)])
    check_profile(t, w, prep, o1)
    check_real_weights(t, w, prep, build, o1)
    check_driver_errors(t, w, prep, o1)

    runout = t.path("out")
    rc, out, err = host(["--build-dir", build, "run", "--dir", prep, "--out", runout,
                         "--threads", "1,2", "--runs", 3, "--profile", 2, "--torch-runs", 1,
                         "--budget", 150])
    doc = json.load(open(os.path.join(runout, "host.json"))) if os.path.exists(
        os.path.join(runout, "host.json")) else {}
    rows = doc.get("rows", [])
    ok = rc == 0 and doc.get("host", {}).get("nproc") and not doc.get("errors")
    t.check(ok, "run: rc 0, host described, no errors%s" % (
        "" if ok else " (rc %s: %s)" % (rc, err.strip()[-500:])))
    for (prec, b), o in sorted(objs.items()):
        for th in (1, 2):
            m = [x for x in rows if (x["tool"], x["precision"], x["batch"], x["threads"]) ==
                 ("mambac", prec, b, th)]
            e = [x for x in rows if (x["tool"], x["precision"], x["batch"], x["threads"]) ==
                 ("eager", prec, b, th)]
            t.check(len(m) == 1 and m[0]["status"] == "ok" and m[0]["img_s"] > 0 and
                    len(e) == 1 and e[0]["status"] == "ok" and e[0]["img_s"] > 0 and
                    e[0]["torch_model"] == "16:1,1,1,1",
                    "run: mambac and PyTorch eager rows for %s batch %d at %d threads" % (prec, b, th))
    comp = [x for x in rows if x["tool"] == "compile"]
    t.check(comp and all(x["status"] == "ok" and x["compile_s"] > 0 or
                         x["status"] == "unavailable" and "torch.compile" in x["why"]
                         for x in comp),
            "run: torch.compile rows timed, or unavailable with the reason (%s)" %
            sorted({x.get("why") or x["status"] for x in comp}))
    with open(os.path.join(runout, "host.csv")) as f:
        csv_rows = list(csv.DictReader(f))
    t.check(len(csv_rows) == len(rows) and "img_s" in csv_rows[0],
            "run: host.csv has the same %d rows" % len(rows))
    with open(os.path.join(runout, "host_profile.csv")) as f:
        prof = list(csv.DictReader(f))
    t.check(len({(p["precision"], p["batch"], p["threads"]) for p in prof}) == 2 * len(objs),
            "run: a profile per driver and thread count")

    res = t.path("results")
    rc, out, err = host(["--build-dir", build, "report", runout, "--results-dir", res])
    md = open(os.path.join(res, "host.md")).read() if rc == 0 else ""
    ok = rc == 0 and all(os.path.exists(os.path.join(res, f)) for f in
                         ("host.csv", "host.json", "host_profile.csv", "host.md"))
    t.check(ok, "report: CSV, JSON, profile and markdown written%s" % (
        "" if ok else " (rc %s: %s)" % (rc, err.strip()[-300:])))
    ok = ("| threads | mambac ms |" in md and "**micro, fp32, batch 1**" in md and
          "Where the time goes: micro fp32 batch 1" in md and "| **whole run** |" in md and
          md.count("\n| 2 | ") == len(objs))
    t.check(ok, "report: a scaling table per precision and batch, the profile by kernel kind")
    if not ok:
        print(md)
    if "unavailable" in {x["status"] for x in comp}:
        t.check("torch.compile: unavailable" in md, "report: says why torch.compile is missing")
    t.check(os.path.exists(os.path.join(res, "host.png")) == ("![images/s" in md),
            "report: the chart is linked exactly when it was drawn")

    # usage and setup errors: one line, no traceback
    one_line_error(t, "report of a folder without results",
                   host(["--build-dir", build, "report", prep, "--results-dir", res]), 2,
                   [prep, "host.json"])
    one_line_error(t, "run without prepare",
                   host(["--build-dir", build, "run", "--dir", w, "--out", t.path("o2")]), 2,
                   [w, "manifest.json"])
    one_line_error(t, "prepare of a missing config",
                   host(["--build-dir", build, "prepare", "--config", t.path("nope.yaml"),
                         "--mambac", t.mambac, "--dir", t.path("p2")]), 2, ["nope.yaml"])
    one_line_error(t, "run --parts bogus",
                   host(["--build-dir", build, "run", "--dir", prep, "--out", t.path("o3"),
                         "--parts", "mambac,bogus"]), 2, ["bogus"])
    t.finish()


if __name__ == "__main__":
    main()
