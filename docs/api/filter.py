#!/usr/bin/env python3
"""filter.py: Doxygen INPUT_FILTER for include/rotary.h: its plain C comments become Doxygen comments.

The header documents every declaration with ordinary comments (/* ... */ above it, or after it on the same line),
so that it reads well as C. This filter, run by Doxygen on the header (docs/api/Doxyfile), rewrites on the fly:
  - the first comment (the file's purpose) and every comment block separated from the code below it by a blank
    line (the conventions) into the file's documentation (@file);
  - a comment block directly above code into that code's documentation (/** ... */);
  - a comment after code on the same line into a member's documentation (/**< ... */).
Line numbers are kept, so Doxygen's messages point at the header's real lines.
"""
import re
import sys

TRAILING = re.compile(r"^(\s*\S.*?)/\*(?![*!])")


def comment_end(lines, i):
    """Index of the line that closes the comment opened on line i."""
    j = i
    while "*/" not in lines[j][lines[j].index("/*") + 2 if j == i else 0:]:
        j += 1
    return j


def convert(lines):
    out = list(lines)
    i = 0
    first = True
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith("/*") and not stripped.startswith(("/**", "/*!")):
            end = comment_end(lines, i)
            detached = end + 1 >= len(lines) or not lines[end + 1].strip()
            indent = line[: len(line) - len(stripped)]
            if first or detached:
                out[i] = indent + "/** @file" + ("\n" if stripped.rstrip() == "/*" else "\n * ") + \
                    stripped[2:].lstrip()
            else:
                out[i] = indent + "/**" + stripped[2:]
            first = False
            i = end + 1
            continue
        m = TRAILING.match(line)
        if m and not line.lstrip().startswith("#"):  # not after a preprocessor line (#endif /* X */)
            out[i] = m.group(1) + "/**<" + line[m.end():]
            i = comment_end(lines, i) + 1 if "*/" not in line[m.end():] else i + 1
            continue
        i += 1
    return out


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        lines = f.readlines()
    sys.stdout.write("".join(convert(lines)))


if __name__ == "__main__":
    main()
