#!/usr/bin/python3
"""fnlen.py [-n N] FILE.c...: print the C functions longer than N lines (default 80).

A function's length is counted from the first line of its signature to its
closing brace, both included. Exits 1 when it printed anything, so that it can
serve as a test. It is a brace-matching scan, not a parser: comments, string
and character literals are blanked first (keeping the line breaks), then every
top-level '{' whose declaration ends in ')' opens a function definition (an
initializer ends in '=', a struct or enum in its tag). That is enough for the
project's own style (K&R-free C11, no macros that open or close braces at the
top level); it does not try to be more.
"""
import argparse
import re
import sys


def blank(text):
    """Comments and literals as spaces, newlines kept, so lines still count."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_preprocessor(text):
    """Preprocessor lines (with their continuations) as blank lines."""
    lines = text.split("\n")
    cont = False
    for k, line in enumerate(lines):
        if cont or line.lstrip().startswith("#"):
            cont = line.rstrip().endswith("\\")
            lines[k] = ""
    return "\n".join(lines)


def functions(text):
    """(name, first line, last line) of every top-level function definition."""
    text = drop_preprocessor(blank(text))
    found = []
    depth = 0
    decl_start = 0  # where the current top-level declaration began
    fn = None  # (name, first line) while inside a function body
    for i, c in enumerate(text):
        if c == "{":
            if depth == 0:
                decl = text[decl_start:i]
                m = re.search(r"([A-Za-z_]\w*)\s*\(", decl)
                if decl.rstrip().endswith(")") and m and "=" not in decl:
                    first = decl_start + len(decl) - len(decl.lstrip())
                    fn = (m.group(1), text.count("\n", 0, first) + 1)
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                if fn:
                    found.append((fn[0], fn[1], text.count("\n", 0, i) + 1))
                fn = None
                decl_start = i + 1
        elif c == ";" and depth == 0:
            decl_start = i + 1
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=80, help="longest allowed function, in lines")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    over = []
    for path in args.files:
        with open(path, encoding="utf-8") as f:
            for name, first, last in functions(f.read()):
                if last - first + 1 > args.n:
                    over.append((last - first + 1, path, first, name))
    for length, path, first, name in sorted(over, key=lambda o: (-o[0], o[1], o[2])):
        print(f"{path}:{first}: {name}: {length} lines")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
