"""test_list.py: `pgvault list`, `pgvault show` and the secondaries' lag in
`pgvault status` (issue 7 item 1, issue 5 item 5, issue 6's lag).

One repository, one source ("main") with archiving on, holding a logical
backup L of database app and three physical backups P0, P1, P2 (several
WAL switches between P1 and P2), a verify of everything, a drill of L, a
pin on P1, and a retention policy "hourly=1" for physical backups: P2 is
kept (newest, hourly), P1 is kept (pinned), P0 would expire.

Spec under test:
- list --json: every backup with the old keys and the new ones (database,
  duration_ms, wal, pinned, verify, drill, retention, restorable,
  recovers_to) with exact values where they are deterministic; the
  recoverable window of "main" from P1's end (P0 expires) to the newest
  archived segment.
- list text: a header per source and kind, aligned columns of at most 120
  characters, retention cells "EXPIRE", "pinned", "newest,hourly", the WAL
  range under each physical row, the window at the end.
- filters --kind, --database, --since/--until (times and ages); an empty
  result is one line; a bad --kind is refused.
- a secondary repository's lag in status (backups and WAL it lacks), a
  WARNING from --check over copy-lag-warning, in step after `copy`.
- an archived segment deleted between P1 and P2: list (text and JSON)
  reports the gap with the segment's name, P0 and P1 cannot recover past it,
  P2 is unaffected; show P1 says so too.
"""

import datetime
import glob
import json
import os
import re

import pytest

from physical_helpers import (SOURCE, archive_to, backup, make_repo, ok, pv,
                              switch_wal, wait_archived)

ROW = "%-23s  %-16s  %-8s %6s %5s %6s %5s  %-12s %-12s %s"


def conn_db(cluster, db):
    return ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-d", db]


def list_json(env, *args):
    r = ok(env["c"], "list", "--repo", env["repo"], "--config", env["conf"], "--json", *args)
    return json.loads(r.out)


def ids(doc):
    return [b["id"] for b in doc["backups"]]


def segno(name):
    return int(name[8:16], 16) * 256 + int(name[16:24], 16)   # 16 MiB segments


def segname(tl, n):
    return "%08X%08X%08X" % (tl, n // 256, n % 256)


def archived(env):
    return sorted(os.path.basename(p) for p in
                  glob.glob(os.path.join(env["repo"], "wal", SOURCE, "00000001", "*"))
                  if re.fullmatch(r"[0-9A-F]{24}", os.path.basename(p)))


@pytest.fixture(scope="module")
def env(pg_module, pgvault_bin):
    c = pg_module
    repo = make_repo(c)
    archive_to(c, repo)
    c.execute("CREATE DATABASE app")
    c.execute("CREATE TABLE t (id int PRIMARY KEY, v text); "
              "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g", db="app")
    conf = os.path.join(c.basedir, "list.conf")
    with open(conf, "w") as f:
        f.write("[global]\nretention-physical = hourly=1\n[source:%s]\n" % SOURCE)
    os.chmod(conf, 0o644)
    r = ok(c, "backup", "--logical", "--repo", repo, "--config", conf, "--source", SOURCE,
           *conn_db(c, "app"), "--json")
    logical = json.loads(r.out)["id"]
    p0 = backup(c, repo)[0]
    wait_archived(c, switch_wal(c))
    p1 = backup(c, repo)[0]
    for i in range(3):
        c.execute("INSERT INTO t SELECT g, 'x' FROM generate_series(%d, %d) g"
                  % (100001 + 1000 * i, 100100 + 1000 * i), db="app")
        wait_archived(c, switch_wal(c))
    p2 = backup(c, repo)[0]
    wait_archived(c, switch_wal(c))
    ok(c, "pin", p1, "--repo", repo, "--note", "legal hold")
    ok(c, "verify", "--repo", repo)
    drills = c.mkdir("drills")
    ok(c, "drill", logical, "--repo", repo,
       env={"PGVAULT_DRILL_DIR": drills, "PATH": c.bindir + os.pathsep + os.environ.get("PATH", "")},
       timeout=300)
    shows = {}
    for i in (logical, p0, p1, p2):
        shows[i] = json.loads(ok(c, "show", i, "--repo", repo, "--config", conf, "--json").out)
    return {"c": c, "repo": repo, "conf": conf, "L": logical, "P0": p0, "P1": p1, "P2": p2,
            "show": shows}


def test_list_json_fields(env):
    doc = list_json(env)
    assert doc["repository"] == os.path.realpath(env["repo"])
    assert doc["time_zone"] == "UTC"
    assert ids(doc) == [env["L"], env["P0"], env["P1"], env["P2"]]
    by = {b["id"]: b for b in doc["backups"]}
    for i, b in by.items():
        s = env["show"][i]
        # the old keys, unchanged
        for k in ("kind", "source", "host", "start_time", "stop_time", "items"):
            assert b[k] == s[k], (k, b[k], s[k])
        assert b["size"] == s["totals"]["logical_bytes"]
        assert b["stored"] == s["totals"]["stored_bytes"]
        assert b["new"] == s["totals"]["new_bytes"]
        assert b["source"] == SOURCE
        start = datetime.datetime.fromisoformat(b["start_time"].replace("Z", "+00:00"))
        stop = datetime.datetime.fromisoformat(b["stop_time"].replace("Z", "+00:00"))
        assert abs(b["duration_ms"] - (stop - start).total_seconds() * 1000) < 1000
        assert b["verify"]["ok"] is True and 0 <= b["verify"]["age_seconds"] < 3600
    L = by[env["L"]]
    assert L["kind"] == "logical" and L["database"] == "app" and L["wal"] is None
    assert L["drill"]["ok"] is True and L["drill"]["age_seconds"] >= 0
    assert L["retention"] == {"action": "keep", "reasons": ["newest", "no-policy"], "text": "no policy"}
    assert L["pinned"] is False
    for p in ("P0", "P1", "P2"):
        b, md = by[env[p]], env["show"][env[p]]["metadata"]
        assert b["kind"] == "physical" and b["database"] is None and b["drill"] is None
        assert b["wal"] == {"timeline": 1, "start_lsn": md["start_lsn"], "stop_lsn": md["stop_lsn"],
                            "start_wal": md["start_wal"], "stop_wal": md["stop_wal"]}
        assert b["restorable"] is True
        assert b["recovers_to"]["segment"] == archived(env)[-1]
    assert by[env["P0"]]["retention"] == {"action": "expire", "reasons": [], "text": "EXPIRE"}
    assert by[env["P1"]]["pinned"] is True
    assert by[env["P1"]]["retention"] == {"action": "keep", "reasons": ["pinned"], "text": "pinned"}
    assert by[env["P2"]]["retention"] == {"action": "keep", "reasons": ["newest", "hourly"],
                                          "text": "newest,hourly"}
    # the window: from P1's end (P0 would expire) to the newest archived segment
    assert len(doc["windows"]) == 1
    w = doc["windows"][0]
    newest = archived(env)[-1]
    assert w["source"] == SOURCE and w["archive_source"] == SOURCE
    assert w["from"]["backup"] == env["P1"]
    assert w["from"]["lsn"] == env["show"][env["P1"]]["metadata"]["stop_lsn"]
    assert w["from"]["time"] == by[env["P1"]]["stop_time"] and w["from"]["timeline"] == 1
    assert w["to"]["segment"] == newest and w["to"]["timeline"] == 1
    assert w["to"]["lsn"] == "%X/%X" % ((segno(newest) + 1) // 256, ((segno(newest) + 1) % 256) << 24)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", w["to"]["time"])
    assert w["gaps"] == [] and w["contiguous"] is True
    assert w["archive"]["timelines"][0]["last"] == newest


def test_list_text_columns(env):
    r = ok(env["c"], "list", "--repo", env["repo"], "--config", env["conf"])
    lines = r.out.splitlines()
    assert all(len(ln) <= 120 for ln in lines), [ln for ln in lines if len(ln) > 120]
    header = ROW % ("ID", "START", "END", "DUR", "SIZE", "STORED", "NEW", "VERIFY", "DRILL", "RETENTION")
    assert lines[0] == "source main, logical, database app (times UTC):"
    assert lines[1] == header
    assert lines.count(header) == 2
    i = lines.index("source main, physical (times UTC):")
    assert lines[i + 1] == header
    by = {ln.split()[0]: ln for ln in lines if ln[:8].isdigit()}
    cell = r"(ok \d+[smhd] ago) +"
    assert re.fullmatch(env["L"] + r"  \d{4}-\d\d-\d\dT\d\d:\d\d  \d\d:\d\d(\+\dd)? +\S+ +\S+ +\S+ +\S+  "
                        + cell + cell + "no policy", by[env["L"]]), by[env["L"]]
    assert re.fullmatch(".*" + cell + r"- +EXPIRE", by[env["P0"]]), by[env["P0"]]
    assert re.fullmatch(".*" + cell + r"- +pinned", by[env["P1"]]), by[env["P1"]]
    assert by[env["P2"]].endswith(" newest,hourly")
    # the columns line up with the header
    for ln in by.values():
        assert ln.index(ln.split()[1]) == header.index("START")
    # each physical row is followed by its WAL range
    md = env["show"][env["P2"]]["metadata"]
    j = lines.index(by[env["P2"]])
    assert lines[j + 1] == "%-23s  WAL %s..%s  %s..%s" % ("", md["start_lsn"], md["stop_lsn"],
                                                            md["start_wal"], md["stop_wal"])
    k = lines.index("recoverable window, source main (WAL archive 'main'):")
    p1 = env["show"][env["P1"]]["metadata"]
    assert re.fullmatch(r"  from  \S+Z +%s +end of backup %s \(timeline 1\)" % (re.escape(p1["stop_lsn"]), env["P1"]),
                        lines[k + 1]), lines[k + 1]
    assert lines[k + 2].startswith("  to    ") and lines[k + 2].endswith(
        "newest archived segment " + archived(env)[-1])
    assert lines[k + 3] == "  no gap in the archived WAL"


def test_list_filters(env):
    assert ids(list_json(env, "--kind", "logical")) == [env["L"]]
    assert ids(list_json(env, "--kind", "physical")) == [env["P0"], env["P1"], env["P2"]]
    assert list_json(env, "--kind", "logical")["windows"] == []
    assert ids(list_json(env, "--database", "app")) == [env["L"]]
    assert ids(list_json(env, "--source", SOURCE, "--kind", "physical", "--database", "app")) == []
    start = {b["id"]: b["start_time"] for b in list_json(env)["backups"]}
    order = [env["L"], env["P0"], env["P1"], env["P2"]]

    def between(lo, hi):   # list shows times to the second; bounds are inclusive at that precision
        return [i for i in order if (lo is None or start[i] >= lo) and (hi is None or start[i] <= hi)]
    assert ids(list_json(env, "--since", start[env["P1"]])) == between(start[env["P1"]], None)
    assert env["P1"] in between(start[env["P1"]], None) and env["L"] not in between(start[env["P2"]], None)
    assert ids(list_json(env, "--until", start[env["L"]])) == between(None, start[env["L"]])
    assert env["L"] in between(None, start[env["L"]]) and env["P2"] not in between(None, start[env["L"]])
    assert ids(list_json(env, "--since", start[env["P0"]], "--until", start[env["P1"]])) == \
        between(start[env["P0"]], start[env["P1"]])
    assert ids(list_json(env, "--since", "1h")) == [env["L"], env["P0"], env["P1"], env["P2"]]
    doc = list_json(env, "--since", "2099-01-01")
    assert doc["backups"] == [] and doc["filtered"] is True
    r = ok(env["c"], "list", "--repo", env["repo"], "--database", "nope")
    assert r.out == "no backups match the filters in repository '%s'\n" % os.path.realpath(env["repo"])
    r = pv(env["c"], "list", "--repo", env["repo"], "--kind", "dump")
    assert r.rc == 2 and "pgvault list: error: invalid --kind 'dump': give logical, physical or file" in r.err
    r = pv(env["c"], "list", "--repo", env["repo"], "--since", "yesterday-ish")
    assert r.rc == 2 and "invalid --since 'yesterday-ish'" in r.err


def test_show_header(env):
    r = ok(env["c"], "show", env["P2"], "--repo", env["repo"], "--config", env["conf"])
    md = env["show"][env["P2"]]["metadata"]
    lines = r.out.splitlines()
    assert lines[0] == "backup     %s (physical)" % env["P2"]
    assert "WAL        %s..%s, segments %s..%s (timeline 1)" % (
        md["start_lsn"], md["stop_lsn"], md["start_wal"], md["stop_wal"]) in lines
    assert re.search(r"^verify     ok \d+[smh] ago \(full, took [0-9.]+m?s\)$", r.out, re.M), r.out
    assert "drill      -" in lines and "retention  newest,hourly" in lines
    assert re.search(r"^finished   \S+Z \(took \d+\S*\)$", r.out, re.M)
    r = ok(env["c"], "show", env["L"], "--repo", env["repo"], "--config", env["conf"])
    assert re.search(r"^drill      ok \d+[smh] ago \(total \S+\)$", r.out, re.M), r.out
    assert "retention  no policy" in r.out
    assert "database   app " in r.out          # the per-kind details stay below
    doc = env["show"][env["P1"]]
    assert doc["verify"]["mode"] == "full" and doc["verify"]["bad_chunks"] == 0 and doc["verify"]["ok"] is True
    d = env["show"][env["L"]]["drill"]
    assert d["ok"] is True and d["integrity_ok"] is True and d["times_ms"]["total"] > 0
    assert doc["pinned"] is True and doc["retention"]["reasons"] == ["pinned"]
    assert doc["window"]["from"]["backup"] == env["P1"] and doc["restorable"] is True


def test_status_secondary_lag(env):
    c = env["c"]
    repo_b = make_repo(c, "repo_b")
    conf = os.path.join(c.basedir, "lag.conf")
    with open(conf, "w") as f:
        f.write("[global]\ncopy-lag-warning = 1s\n[repo:a]\nurl = %s\n[repo:b]\nurl = %s\n"
                "[source:%s]\nrepos = a, b\n" % (env["repo"], repo_b, SOURCE))
    os.chmod(conf, 0o644)
    r = ok(c, "status", "--repo", env["repo"], "--config", conf, "--json")
    sec = json.loads(r.out)["secondaries"]
    assert len(sec) == 1
    s = sec[0]
    assert (s["source"], s["repository"], s["url"]) == (SOURCE, "b", repo_b)
    assert s["backups_missing"] == [env["L"], env["P0"], env["P1"], env["P2"]]
    assert s["wal"] == {"newest": archived(env)[-1], "secondary_newest": None, "behind": True}
    assert s["in_step"] is False and s["lag_seconds"] >= 1 and s["status"] == "WARNING"
    assert s["failures"] == [] and s["error"] is None and s["compared"] is True
    r = pv(c, "status", "--repo", env["repo"], "--config", conf, "--check")
    assert r.rc == 1, r
    assert re.fullmatch(r"PGVAULT WARNING - main: secondary repository 'b' is \S+( \S+)? behind "
                        r"\(4 backups missing, WAL behind; warning after 1s\)\n", r.out), r.out
    r = ok(c, "status", "--repo", env["repo"], "--config", conf)
    assert re.search(r"^WARNING   main          secondary repository 'b': .* behind, 4 backups missing, "
                     r"WAL up to nothing only \(here %s\)$" % archived(env)[-1], r.out, re.M), r.out
    # copied: in step
    ok(c, "copy", "--repo", env["repo"], "--config", conf, "--to", "b", "--all")
    s = json.loads(ok(c, "status", "--repo", env["repo"], "--config", conf, "--json").out)["secondaries"][0]
    assert s["backups_missing"] == [] and s["wal"]["behind"] is False and s["in_step"] is True
    assert s["lag_seconds"] == 0 and s["status"] == "OK"
    r = pv(c, "status", "--repo", env["repo"], "--config", conf, "--check")
    assert r.rc == 0 and r.out.startswith("PGVAULT OK - "), r
    assert "secondary repository 'b': in step" in ok(c, "status", "--repo", env["repo"], "--config", conf).out


def test_gap_in_archived_wal(env):
    """Runs last in this module: it deletes a segment between P1 and P2."""
    p1 = env["show"][env["P1"]]["metadata"]
    p2 = env["show"][env["P2"]]["metadata"]
    gap = segno(p1["stop_wal"]) + 1
    assert gap < segno(p2["start_wal"]), (p1["stop_wal"], p2["start_wal"])
    name = segname(1, gap)
    path = os.path.join(env["repo"], "wal", SOURCE, "00000001", name)
    assert os.path.exists(path), sorted(os.listdir(os.path.dirname(path)))
    os.unlink(path)

    doc = list_json(env)
    w = doc["windows"][0]
    assert w["gaps"] == [{"timeline": 1, "first": name, "last": name, "segments": 1,
                          "from_lsn": "%X/%X" % (gap // 256, (gap % 256) << 24),
                          "to_lsn": "%X/%X" % ((gap + 1) // 256, ((gap + 1) % 256) << 24),
                          "backups_cut": [env["P0"], env["P1"]], "backups_broken": []}]
    assert w["contiguous"] is False and w["from"]["backup"] == env["P1"]
    assert w["archive"]["timelines"][0]["gaps"] == [{"first": name, "last": name}]
    by = {b["id"]: b for b in doc["backups"]}
    assert by[env["P1"]]["recovers_to"]["segment"] == segname(1, gap - 1)
    assert by[env["P0"]]["recovers_to"]["segment"] == segname(1, gap - 1)
    assert by[env["P2"]]["recovers_to"]["segment"] == archived(env)[-1]
    assert all(by[env[p]]["restorable"] for p in ("P0", "P1", "P2"))

    r = ok(env["c"], "list", "--repo", env["repo"], "--config", env["conf"])
    lines = r.out.splitlines()
    k = lines.index("recoverable window, source main (WAL archive 'main'):")
    assert lines[k + 3] == "  GAP   %s missing (timeline 1, %s..%s)" % (name, w["gaps"][0]["from_lsn"],
                                                                     w["gaps"][0]["to_lsn"])
    assert lines[k + 4] == "        cannot recover past it: %s, %s" % (env["P0"], env["P1"])
    assert "no gap in the archived WAL" not in r.out

    r = ok(env["c"], "show", env["P1"], "--repo", env["repo"], "--config", env["conf"])
    assert "recovery   can reach %s (segment %s)" % (by[env["P1"]]["recovers_to"]["lsn"], segname(1, gap - 1)) \
        in r.out.splitlines()
    assert "WAL gap    %s..%s missing (timeline 1)" % (name, name) in r.out.splitlines()


def test_status_failed_automatic_sync(env):
    """A secondary that cannot be written: the backup succeeds, the failed
    sync is recorded, and status reports it (a WARNING whatever the
    threshold, since the secondary cannot even be read)."""
    c = env["c"]
    repo_c = make_repo(c, "repo_c")
    bad = os.path.join(env["conf"], "not-a-directory")     # under a regular file
    conf = os.path.join(c.basedir, "sync.conf")
    with open(conf, "w") as f:
        f.write("[repo:a]\nurl = %s\n[repo:bad]\nurl = %s\n[source:%s]\nrepos = a, bad\n"
                % (repo_c, bad, SOURCE))
    os.chmod(conf, 0o644)
    r = ok(c, "backup", "--file", conf, "--repo", repo_c, "--config", conf, "--source", SOURCE, "--json")
    bid = json.loads(r.out)["id"]
    doc = json.loads(ok(c, "status", "--repo", repo_c, "--config", conf, "--json").out)
    assert doc["status"] == "WARNING"
    s = doc["secondaries"]
    assert len(s) == 1 and s[0]["repository"] == "bad" and s[0]["status"] == "WARNING"
    assert s[0]["error"] and s[0]["in_step"] is False and s[0]["compared"] is False
    assert [(x["what"], x["id"], x["attempts"]) for x in s[0]["failures"]] == [("backup", bid, 1)]
    assert s[0]["failures"][0]["error"]
    r = pv(c, "status", "--repo", repo_c, "--config", conf, "--check")
    assert r.rc == 1 and r.out.startswith("PGVAULT WARNING - main: secondary repository 'bad' cannot be read: "), r
    r = ok(c, "status", "--repo", repo_c, "--config", conf)
    assert re.search(r"^WARNING   main          secondary repository 'bad': cannot be read: .*; 1 failed copy recorded$",
                     r.out, re.M), r.out
