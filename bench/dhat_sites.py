"""The allocation sites that every connection holds: one Markdown row per site (the first frame that
is not allocator plumbing; the call paths into it are added up) with at least 90 % of CONNS blocks
live at DHAT's global peak (t-gmax), its bytes per connection and its block size.

    python3 bench/dhat_sites.py DHAT_OUT_JSON CONNS
"""

import json
import sys

# Frames that say how memory is allocated, not why.
PLUMBING = ("alloc::", "__rust", "__rdl", "raw_vec", "RawVec", "/alloc/src/", "malloc", "memalign",
            "aligned_malloc", "(unix.rs", "(alloc.rs", "bytes_mut.rs", "with_capacity", "reserve",
            "finish_grow", "grow_one", "grow_amortized", "box_new", "vec.rs", "[root]")


def origin(frames, table):
    for index in frames:
        frame = table[index]
        if not any(p in frame for p in PLUMBING):
            text = frame.split(": ", 1)[-1]
            return text.split(" (")[0][:110] + (" (" + text.split(" (")[-1] if " (" in text else "")
    return "?"


def main():
    data = json.load(open(sys.argv[1]))
    conns = int(sys.argv[2])
    sites = {}
    for p in data["pps"]:
        if p.get("gbk", 0) == 0:
            continue
        key = origin(p["fs"], data["ftbl"])
        bytes_, blocks = sites.get(key, (0, 0))
        sites[key] = (bytes_ + p["gb"], blocks + p["gbk"])
    # SQLite's page cache reaches that many blocks too, but it is the log store's, not per connection.
    rows = [(k, b, n) for k, (b, n) in sites.items() if n >= conns * 0.9 and "sqlite3" not in k]
    rows.sort(key=lambda r: -r[1])
    print("| bytes per connection | block size | allocated by |")
    print("|---:|---:|---|")
    total = 0
    for key, bytes_, blocks in rows:
        total += bytes_
        print("| %d | %d | `%s` |" % (bytes_ / conns, bytes_ / blocks, key))
    print("| **%d** | | all sites held once per connection |" % (total / conns))


main()
