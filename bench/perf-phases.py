#!/usr/bin/env python3
"""Groups the samples of a `perf record --call-graph dwarf` of `sited build` by the build
phase on their stack, with how many fell on the main thread (serial work).

Usage (BENCHMARKS.md, "Profile of a one-shot build of tldr into tmpfs"):
    perf record -F 1000 --call-graph dwarf -o perf.data target/release/sited build SITE --out OUT
    perf script -i perf.data -F comm,pid,tid,ip,sym > perf.script
    bench/perf-phases.py perf.script

A sample goes to the first phase below any of whose patterns names a frame of its stack.
Stacks cut short inside minijinja or pulldown-cmark (deep template recursion outgrows
perf's stack copy) still name those crates, so they count to their phase.
"""
import collections
import re
import sys

PHASES = [
    ("page ctx -> values (serde)", ["minijinja::value::serialize", "Serde<T> as"]),
    ("page objects (lazy)", ["render::object::"]),
    ("templates", ["render_template", "minijinja::", "Templates::load::{{closure}}", "html::escape"]),
    ("markdown", ["render::page::render", "render::markdown::", "pulldown_cmark",
                  "render::highlight", "render::links", "render::footnotes"]),
    ("write_file", ["write_file", "write::"]),
    ("load: parse", ["sited_builder::load::parse", "load::frontmatter"]),
    ("load: walk/read", ["sited_builder::load::"]),
    ("tree (place, arrange)", ["tree::"]),
    ("check", ["check::"]),
    ("publish", ["publish"]),
    ("drop", ["drop_in_place", "drop_aside"]),
]


def main(path):
    phases = collections.Counter()
    serial = collections.Counter()
    total = main_thread = 0
    frames, head = [], None

    def flush():
        nonlocal total, main_thread
        if head is None:
            return
        total += 1
        phase = next(
            (name for name, patterns in PHASES
             if any(p in frame for frame in frames for p in patterns)),
            "other",
        )
        phases[phase] += 1
        if head[0] == head[1]:  # pid == tid: the main thread
            serial[phase] += 1
            main_thread += 1

    for line in open(path, errors="replace"):
        if not line.strip():
            flush()
            frames, head = [], None
        elif line.startswith((" ", "\t")):
            frames.append(line.strip())
        else:
            m = re.match(r"\s*\S+\s+(\d+)/(\d+)", line)
            head = (m.group(1), m.group(2)) if m else ("0", "1")
    flush()
    print(f"total {total} samples, main thread {main_thread}")
    for name, count in phases.most_common():
        print(f"{name:28} {count:6} {100 * count / max(total, 1):5.1f}%  main thread {serial[name]}")


if __name__ == "__main__":
    main(sys.argv[1])
