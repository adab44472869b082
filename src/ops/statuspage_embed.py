#!/usr/bin/env python3
"""statuspage_embed.py: turn statuspage.html into a C string (build step).

Usage: statuspage_embed.py INPUT.html OUTPUT.c
The output defines `const char statuspage_template[]` (statuspage.h).  Each
line of the page becomes one string literal; the compiler joins them.
"""
import sys


def c_literal(line):
    out = []
    for ch in line:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "?":
            out.append("\\?")  # no trigraphs
        elif o < 0x20 or o == 0x7f:
            out.append("\\%03o" % o)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    with open(dst, "w", encoding="utf-8") as f:
        f.write("/* Generated from statuspage.html by statuspage_embed.py: do not edit. */\n")
        f.write('#include "ops/statuspage.h"\n\n')
        f.write("const char statuspage_template[] =\n")
        for line in lines:
            f.write("\t" + c_literal(line) + "\n")
        f.write("\t;\n")


if __name__ == "__main__":
    main()
