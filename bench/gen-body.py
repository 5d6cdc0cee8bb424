#!/usr/bin/env python3
"""Write a JSON order of exactly SIZE bytes for bench/gateway and bench/profile.

    gen-body.py BASE.json SIZE > body.json

BASE is bench/gateway-body.json (the 1 KiB order). Its items are replaced
by generated ones until the document is nearly SIZE bytes, then the
removed "note" field pads it to exactly SIZE. Each item has six fields:
sku, name and quantity are kept by bench/gateway-contract.yaml, price,
tags and gift_message removed, so privgate forwards about half of the
bytes and half of the fields. Deterministic (no randomness).
"""
import json
import sys


def enc(d):
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False)


def item(i):
    return {
        "sku": "SKU-%06d" % i,
        "name": "Catalogue item %d" % i,
        "quantity": 1 + i % 5,
        "price": round(3.5 + (i * 7919 % 10000) / 100, 2),
        "tags": ["tag%d" % (i % 13), "sale"],
        "gift_message": "For you %d" % i,
    }


def main():
    base = json.load(open(sys.argv[1]))
    target = int(sys.argv[2])
    doc = dict(base)
    doc["items"] = []
    doc["note"] = ""
    size = len(enc(doc).encode())
    items = []
    i = 0
    while True:
        s = len(enc(item(i)).encode()) + (1 if items else 0)  # and its comma
        if size + s > target - 64:
            break
        items.append(item(i))
        size += s
        i += 1
    doc["items"] = items
    pad = target - len(enc(doc).encode())
    if pad < 0:
        sys.exit("gen-body.py: SIZE too small")
    doc["note"] = "x" * pad
    out = enc(doc).encode()
    assert len(out) == target, (len(out), target)
    sys.stdout.buffer.write(out)


if __name__ == "__main__":
    main()
