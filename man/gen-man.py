#!/usr/bin/env python3
"""Fills a man page template from the tables of docs/*.md.

    gen-man.py TEMPLATE OUTPUT VERSION DOC...

Each line of TEMPLATE of the form

    @TABLE docs/FILE.md | HEADING@

is replaced by the first Markdown table under the section HEADING of that
file (path relative to the source root, which is the folder above this
script's), one .TP entry a row: the first cell is the tag, the other cells
the paragraph (a cell named by a "@COLUMN NAME: LABEL@" line after the
table line is prefixed with LABEL).  @VERSION@ becomes VERSION.  So the
man pages say what docs/config.md and docs/admin.md say and cannot drift
from them; the build fails if a table is missing or has no rows.

The DOC arguments only tell the build system what the output depends on.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def roff_escape(text, code=False):
    """Plain text to roff: backslashes escaped; in code (commands, options,
    key names) a hyphen is a minus sign, as man-pages(7) asks; elsewhere it
    stays a hyphen."""
    text = text.replace("\\", "\\e")
    return text.replace("-", "\\-") if code else text


def inline(md):
    """A Markdown table cell to roff: `code` bold, **strong** bold,
    [text](link) as text, escaped pipes back to pipes."""
    md = md.replace("\\|", "|")
    out = []
    pos = 0
    for m in re.finditer(r"`([^`]*)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\([^)]*\)", md):
        out.append(roff_escape(md[pos:m.start()]))
        if m.group(1) is not None:
            out.append("\\fB" + roff_escape(m.group(1), code=True) + "\\fR")
        elif m.group(2) is not None:
            out.append("\\fB" + roff_escape(m.group(2)) + "\\fR")
        else:
            out.append(roff_escape(m.group(3)))
        pos = m.end()
    out.append(roff_escape(md[pos:]))
    return "".join(out)


def split_row(line):
    """Cells of a Markdown table row; "\\|" is a pipe inside a cell."""
    cells, cur, i = [], [], 0
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] == "|":
            cur.append("\\|")
            i += 2
            continue
        if body[i] == "|":
            cells.append("".join(cur).strip())
            cur = []
        else:
            cur.append(body[i])
        i += 1
    cells.append("".join(cur).strip())
    return cells


def find_table(doc, heading):
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        lines = f.read().split("\n")
    start = None
    for i, line in enumerate(lines):
        if re.match(r"#+ ", line) and line.lstrip("#").strip() == heading:
            start = i + 1
            break
    if start is None:
        sys.exit(f"gen-man: {doc}: no section \"{heading}\"")
    rows = []
    for line in lines[start:]:
        if re.match(r"#+ ", line):
            break
        if line.startswith("|"):
            rows.append(split_row(line))
        elif rows:
            break
    if len(rows) < 3 or not all(set(c) <= set("-: ") for c in rows[1]):
        sys.exit(f"gen-man: {doc}: section \"{heading}\" has no table with rows")
    return rows[0], rows[2:]


def render(doc, heading, labels):
    header, rows = find_table(doc, heading)
    out = []
    for row in rows:
        if len(row) != len(header):
            sys.exit(f"gen-man: {doc}: a row of \"{heading}\" has {len(row)} cells, "
                     f"not {len(header)}: {row[0]}")
        out.append(".TP")
        out.append(inline(row[0]))
        text = " ".join(inline(c) for n, c in zip(header[1:], row[1:]) if n not in labels)
        if text[:1].islower():
            text = text[0].upper() + text[1:]
        if text and text[-1] not in ".:;!?":
            text += "."
        parts = [text] if text else []
        for name, cell in zip(header[1:], row[1:]):
            if name in labels:
                parts.append(f"{labels[name]}: {inline(cell)}.")
        para = " ".join(parts)
        out.append(para if not para.startswith((".", "'")) else "\\&" + para)
    return out


def main(argv):
    if len(argv) < 4:
        sys.exit("usage: gen-man.py TEMPLATE OUTPUT VERSION [DOC...]")
    template, output, version = argv[1], argv[2], argv[3]
    with open(template, encoding="utf-8") as f:
        lines = f.read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.fullmatch(r"@TABLE (\S+) \| (.+)@", line)
        if m is None:
            out.append(line.replace("@VERSION@", version))
            i += 1
            continue
        labels = {}
        i += 1
        while i < len(lines):
            lm = re.fullmatch(r"@COLUMN ([^:]+): (.+)@", lines[i])
            if lm is None:
                break
            labels[lm.group(1)] = lm.group(2)
            i += 1
        out.extend(render(m.group(1), m.group(2), labels))
    with open(output, "w", encoding="utf-8") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main(sys.argv)
