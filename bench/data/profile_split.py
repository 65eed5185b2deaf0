#!/usr/bin/env python3
"""profile_split.py BIN PROFILE...: the CPU of bench/data pipeline profiles
(-cpuprofile) split by who is on each sample's stack: the work (decode,
augment), S3 (embedded server, client), supflow's codec and bus, nats-server,
nats.go, watermill, the garbage collector. Each sample goes to the first
category, in the order below, with a frame matching its regexp; several
profiles are summed. Needs `go tool pprof` (BIN may be "" for profiles
that carry their symbols). docs/benchmarks.md, "Bus and S3 overhead per
sample"."""
import re, subprocess, sys, collections
cats = [
    ("decode work (imgdecode)", r"supflow/imgdecode\."),
    ("augment work (transform)", r"supflow/stages/augment\.\(\*Stage\)\.Handle|supflow/transform\."),
    ("S3 server (embedded)", r"gofakes3|supflow/store\.\(\*Embedded|net/http\.\(\*conn\)\.serve"),
    ("S3 client (store, minio-go)", r"supflow/store\.|minio-go"),
    ("decode stage other", r"supflow/stages/decode\."),
    ("codec (messages)", r"supflow/messages\."),
    ("nats-server filestore", r"nats-server/v2/server\.\(\*(msgBlock|fileStore)\)"),
    ("nats-server other", r"nats-server/v2/server\."),
    ("nats.go client", r"nats%2ego|nats\.go"),
    ("bus (supflow)", r"supflow/bus\."),
    ("watermill", r"ThreeDotsLabs"),
    ("bench sink/feeder", r"^main\."),
    ("GC", r"runtime\.gcBgMarkWorker|runtime\.bgsweep|runtime\.gcAssist|runtime\.bgscavenge"),
    ("runtime other", r"runtime\."),
    ("other", r"."),
]
rx = [(n, re.compile(p)) for n, p in cats]
tot = collections.Counter(); allt = 0
for prof in sys.argv[2:]:
    args = ["go", "tool", "pprof", "-raw"] + ([sys.argv[1]] if sys.argv[1] else []) + [prof]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    i = lines.index("Locations")
    locs = {}; cur = None
    for l in lines[i+1:]:
        m = re.match(r"\s+(\d+): 0x[0-9a-f]+ M=\d+ (\S+)", l)
        if m:
            cur = int(m.group(1)); locs[cur] = [m.group(2)]; continue
        m = re.match(r"\s+(\S+) /", l)
        if m and cur is not None:
            locs[cur].append(m.group(1)); continue
        if not l.startswith(" "): break
    j = lines.index("samples/count cpu/nanoseconds")
    for l in lines[j+1:i]:
        m = re.match(r"\s+(\d+)\s+(\d+): ([\d ]+)$", l)
        if not m: continue
        ns = int(m.group(2)); frames = [f for x in m.group(3).split() for f in locs.get(int(x), [])]
        allt += ns
        for n, r in rx:
            if any(r.search(f) for f in frames):
                tot[n] += ns; break
for n, _ in cats:
    if tot[n]: print(f"{n:32s} {tot[n]/1e9:7.2f} s {100*tot[n]/allt:5.1f}%")
print(f"{'total':32s} {allt/1e9:7.2f} s")
