#!/usr/bin/env python3
"""Helpers for bench/run.sh: deterministic fixtures, direct edits of an idem cache
database, pooling of interleaved hyperfine rounds, the concurrency test, and the
markdown report. Standard library only (python3 >= 3.9).

Every subcommand is small and prints nothing on success unless it reports a value.
"""

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time

CHUNK = 8 << 20


# --------------------------------------------------------------------------- fixtures


def write_random(path, size, rng):
    """Writes `size` pseudo-random bytes drawn from `rng` (deterministic per seed)."""
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(CHUNK, left)
            f.write(rng.randbytes(n))
            left -= n


def cmd_gen_file(a):
    rng = random.Random(a.seed)
    write_random(a.path, a.bytes, rng)


def cmd_gen_tree(a):
    """`files` files spread over directories of 100, sizes uniform in [0, 2*avg]
    with avg = total/files, so the tree holds about `total` bytes."""
    rng = random.Random(a.seed)
    avg = a.total // a.files
    written = 0
    for i in range(a.files):
        d = os.path.join(a.dir, f"d{i // 100:03d}")
        if i % 100 == 0:
            os.makedirs(d, exist_ok=True)
        size = rng.randint(0, 2 * avg)
        with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
            f.write(rng.randbytes(size))
        written += size
    print(written)


# --------------------------------------------------------------------- cache database


def cmd_clear_stat_cache(a):
    """Empties idem's stat cache and nothing else (the record stays): the per-task
    `hot/*.stat` files, and the `stat_cache` table older idems kept (for --idem A/B)."""
    hot = os.path.join(os.path.dirname(a.db), "hot")
    if os.path.isdir(hot):
        for name in os.listdir(hot):
            if name.endswith(".stat"):
                os.unlink(os.path.join(hot, name))
    con = sqlite3.connect(a.db, timeout=60)
    con.execute("DELETE FROM stat_cache")
    con.commit()
    con.close()


def cmd_fill_records(a):
    """Adds `count` filler records with unique random task keys. Only the real record
    is ever decoded, so the filler `data` is a few arbitrary bytes."""
    rng = random.Random(a.seed)
    con = sqlite3.connect(a.db, timeout=60)
    con.execute("PRAGMA synchronous=OFF")
    now = time.time_ns()
    batch = []
    for i in range(a.count):
        tk = rng.randbytes(32)
        sk = rng.randbytes(32)
        batch.append((tk, sk, None, now - i, now - i, 0, 0, 0, 1000, f"filler {i}", rng.randbytes(16)))
        if len(batch) >= 50_000:
            con.executemany(
                "INSERT INTO records(task_key, state_key, exec_key, created_ns, last_used_ns, hits,"
                " size, exit_code, duration_ns, argv, data) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                batch,
            )
            batch.clear()
    if batch:
        con.executemany(
            "INSERT INTO records(task_key, state_key, exec_key, created_ns, last_used_ns, hits,"
            " size, exit_code, duration_ns, argv, data) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            batch,
        )
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    n = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    con.close()
    print(n)


def cmd_count_records(a):
    con = sqlite3.connect(a.db, timeout=60)
    print(con.execute("SELECT COUNT(*) FROM records").fetchone()[0])
    con.close()


# ------------------------------------------------------------------------ concurrency


def cmd_concurrent(a):
    """Starts `n` distinct misses at once on one cache; reports errors and runs/s."""
    env = dict(os.environ, IDEM_CACHE_DIR=a.cache)
    procs = []
    t0 = time.monotonic()
    for i in range(a.n):
        p = subprocess.Popen(
            [a.idem, "run", "--", "sh", "-c", f"echo {i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        procs.append((i, p))
    errors = []
    for i, p in procs:
        out, err = p.communicate()
        text = err.decode(errors="replace")
        bad = p.returncode != 0 or out != f"{i}\n".encode() or any(
            w in text.lower() for w in ("locked", "error", "warning")
        )
        if bad:
            errors.append(f"#{i}: rc={p.returncode} stdout={out[:40]!r} stderr={text.strip()[:200]!r}")
    wall = time.monotonic() - t0
    con = sqlite3.connect(os.path.join(a.cache, "idem.db"), timeout=60)
    recorded = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    con.close()
    if recorded != a.n:
        errors.append(f"{recorded} records stored for {a.n} distinct misses")
    for e in errors[:10]:
        print("  " + e, file=sys.stderr)
    json.dump(
        {"n": a.n, "errors": len(errors), "wall_s": wall, "runs_per_s": a.n / wall, "recorded": recorded},
        open(a.out, "w"),
    )


# ---------------------------------------------------------------------------- results


def pooled(files):
    """{command name: [times in s]} pooled over every round's hyperfine JSON."""
    times = {}
    for fn in files:
        with open(fn) as f:
            for r in json.load(f)["results"]:
                times.setdefault(r["command"], []).extend(r["times"])
    return times


def round_ratios(files, a_name, b_name):
    out = []
    for fn in files:
        with open(fn) as f:
            res = {r["command"]: r for r in json.load(f)["results"]}
        if a_name in res and b_name in res:
            out.append(statistics.median(res[a_name]["times"]) / statistics.median(res[b_name]["times"]))
    return out


def add_row(path, row):
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def cmd_ratio(a):
    """One table row from pooled rounds: idem median vs peer median."""
    t = pooled(a.json)
    idem = statistics.median(t[a.idem])
    row = {"id": a.id, "scenario": a.scenario, "target": a.target, "n": len(t[a.idem])}
    row["idem"] = idem
    if a.peer and a.peer in t:
        peer = statistics.median(t[a.peer])
        row.update(peer=peer, peer_name=a.peer_label or a.peer)
        if a.kind in ("ratio", "info"):
            row["value"] = idem / peer
            row["pass"] = row["value"] <= a.max if a.kind == "ratio" else None
            rr = round_ratios(a.json, a.idem, a.peer)
            row["spread"] = [min(rr), max(rr)] if rr else None
        else:  # overhead in ms
            row["value"] = (idem - peer) * 1000
            row["pass"] = row["value"] <= a.max
        row["kind"] = a.kind
    else:
        row.update(kind=a.kind, value=None, peer=None, peer_name=(a.peer_label or a.peer or "—") + ": not installed", **{"pass": None})
    if a.note:
        row["note"] = a.note
    add_row(a.results, row)


def cmd_value(a):
    """A row that is not a ratio (peak memory, concurrency)."""
    row = {"id": a.id, "scenario": a.scenario, "target": a.target, "kind": a.kind}
    if a.kind == "rss":
        kb = max(int(x) for x in a.values)
        row.update(idem=kb, value=kb / 1024, **{"pass": kb / 1024 <= a.max})
    elif a.kind == "concurrency":
        d = json.load(open(a.values[0]))
        row.update(idem=d["wall_s"], value=d["runs_per_s"], errors=d["errors"], n=d["n"], **{"pass": d["errors"] == 0})
    if a.note:
        row["note"] = a.note
    add_row(a.results, row)


def fmt_time(s):
    if s is None:
        return "n/a"
    if s < 1:
        return f"{s * 1000:.2f} ms"
    return f"{s:.3f} s"


def cmd_table(a):
    rows = [json.loads(line) for line in open(a.results) if line.strip()]
    meta = json.loads(a.meta)
    lines = []
    lines.append(f"# idem benchmark results ({meta['mode']})")
    lines.append("")
    lines.append(
        f"- date: {meta['date']}  \n- host: {meta['host']} ({meta['cpus']} CPUs, load before run: {meta['load']})  \n"
        f"- idem: {meta['idem']}  \n- peers: {meta['peers']}  \n- fixtures: {meta['fixtures']}  \n"
        f"- method: {meta['method']}"
    )
    lines.append("")
    lines.append("| scenario | idem median | peer median | ratio | target | result |")
    lines.append("| --- | --- | --- | --- | --- | --- |")
    fails = 0
    for r in rows:
        k = r["kind"]
        if k == "ratio":
            val = "n/a" if r["value"] is None else f"**{r['value']:.2f}**"
            if r.get("spread"):
                val += f" ({r['spread'][0]:.2f}–{r['spread'][1]:.2f})"
            idem, peer = fmt_time(r["idem"]), f"{fmt_time(r['peer'])} ({r['peer_name']})"
        elif k == "overhead":
            val = "n/a" if r["value"] is None else f"**+{r['value']:.2f} ms**"
            idem, peer = fmt_time(r["idem"]), f"{fmt_time(r['peer'])} ({r['peer_name']})"
        elif k == "info":
            val = "n/a" if r["value"] is None else f"{r['value']:.2f}"
            if r.get("spread"):
                val += f" ({r['spread'][0]:.2f}–{r['spread'][1]:.2f})"
            idem, peer = fmt_time(r["idem"]), f"{fmt_time(r['peer'])} ({r['peer_name']})"
        elif k == "rss":
            val = f"**{r['value']:.1f} MB**"
            idem, peer = f"{r['idem']} KB max RSS", "—"
        elif k == "concurrency":
            val = f"**{r['value']:.0f} runs/s**, {r['errors']} errors"
            idem, peer = f"{r['n']} runs in {r['idem']:.2f} s", "—"
        p = r.get("pass")
        res = "—" if p is None else ("pass" if p else "FAIL")
        if p is False:
            fails += 1
        note = f" <br>_{r['note']}_" if r.get("note") else ""
        cells = [r["scenario"] + note, idem, peer, val, r["target"], res]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    lines.append(
        "Ratio = idem median / peer median over all pooled runs; the range in parentheses is the "
        "lowest and highest per-round ratio (one round = one hyperfine call with both commands, "
        "command order rotated between rounds)."
    )
    text = "\n".join(lines) + "\n"
    with open(a.out, "w") as f:
        f.write(text)
    sys.stdout.write(text)
    print(fails, file=open(a.fails, "w"))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("gen-file")
    p.add_argument("path")
    p.add_argument("bytes", type=int)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(f=cmd_gen_file)

    p = sub.add_parser("gen-tree")
    p.add_argument("dir")
    p.add_argument("files", type=int)
    p.add_argument("total", type=int)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(f=cmd_gen_tree)

    p = sub.add_parser("clear-stat-cache")
    p.add_argument("db")
    p.set_defaults(f=cmd_clear_stat_cache)

    p = sub.add_parser("fill-records")
    p.add_argument("db")
    p.add_argument("count", type=int)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(f=cmd_fill_records)

    p = sub.add_parser("count-records")
    p.add_argument("db")
    p.set_defaults(f=cmd_count_records)

    p = sub.add_parser("concurrent")
    p.add_argument("idem")
    p.add_argument("cache")
    p.add_argument("n", type=int)
    p.add_argument("out")
    p.set_defaults(f=cmd_concurrent)

    for name, fn in (("ratio", cmd_ratio),):
        p = sub.add_parser(name)
        p.add_argument("--results", required=True)
        p.add_argument("--id", required=True)
        p.add_argument("--scenario", required=True)
        p.add_argument("--target", required=True)
        p.add_argument("--kind", choices=["ratio", "overhead", "info"], default="ratio")
        p.add_argument("--max", type=float, default=float("inf"))
        p.add_argument("--idem", required=True, help="command name of idem in the JSON")
        p.add_argument("--peer", default="", help="command name of the peer in the JSON")
        p.add_argument("--peer-label", default="")
        p.add_argument("--note", default="")
        p.add_argument("json", nargs="+")
        p.set_defaults(f=fn)

    p = sub.add_parser("value")
    p.add_argument("--results", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--kind", choices=["rss", "concurrency"], required=True)
    p.add_argument("--max", type=float, default=float("inf"))
    p.add_argument("--note", default="")
    p.add_argument("values", nargs="+")
    p.set_defaults(f=cmd_value)

    p = sub.add_parser("table")
    p.add_argument("results")
    p.add_argument("out")
    p.add_argument("fails")
    p.add_argument("--meta", required=True)
    p.set_defaults(f=cmd_table)

    a = ap.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
