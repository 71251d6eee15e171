#!/usr/bin/env python3
"""Writes the seed corpus corpus/classify/seed-*: real answers from docs/zilliz-api.md in the
input layout of fuzz_targets/classify.rs (arbitrary 1.x: little-endian integers, a bool is one
byte, an enum variant is a u32 scaled to the variant count, the last field takes the rest):

  v2: u8 | status-100: u16 | content type: enum(6) | retry-after: enum(5) [+ u32 | i32]
  | extra header: enum(4) | attempt: u8 | credential: enum(4), variant 0 = the fixed token
  | echoes: Vec (a byte 1, then at: u16 + what: enum(5), per echo; a byte 0 ends it)
  | body: enum(2), variant 0 = raw bytes to the end

`cargo fuzz fmt classify corpus/classify/seed-...` shows how a seed decodes.
"""
import os, struct

def variant(k, n):
    x = -(-(k << 32) // n)  # ceil(k * 2^32 / n): the smallest u32 that selects variant k
    assert (x * n) >> 32 == k
    return struct.pack("<I", x)

CT = {"json": 0, "json-utf8": 1, "text": 2, "html": 3, "missing": 4}
ECHO = {"bearer": 0, "token": 1, "password": 2}
def seed(v2, status, ct, body, retry=None, echo_auth=False, attempt=0, echoes=()):
    out = bytes([1 if v2 else 0]) + struct.pack("<H", status - 100) + variant(CT[ct], 6)
    if retry is None:
        out += variant(0, 5)
    elif retry[0] == "seconds":
        out += variant(1, 5) + struct.pack("<I", retry[1])
    elif retry[0] == "date":
        out += variant(3, 5) + struct.pack("<i", retry[1])
    out += variant(1 if echo_auth else 0, 4) + bytes([attempt]) + variant(0, 4)
    for at, what in echoes:
        out += bytes([1]) + struct.pack("<H", at) + variant(ECHO[what], 5)
    out += bytes([0]) + variant(0, 2)
    return out + body.encode()

SEEDS = {
    "v1-drop-ok": seed(False, 200, "json", '{"code":200,"data":{}}'),
    "v1-collection-not-found": seed(False, 200, "json",
        '{"code":100,"message":"collection not found, database: default, collection: nope"}'),
    "v2-partition-loaded": seed(True, 200, "json",
        '{"code":65535,"message":"partition cannot be dropped, partition is loaded, please release it first"}'),
    "v2-partition-not-found-code-200": seed(True, 200, "json",
        '{"code":200,"message":"partition not found[partition=p]"}'),
    "v2-cluster-deleted": seed(True, 200, "json",
        '{"code":0,"data":{"clusterId":"inxx-x","prompt":"The cluster has been deleted."}}'),
    "v2-apikey-illegal-401": seed(True, 401, "json",
        '{"code":21119,"message":"The apikey is illegal: "}', echo_auth=True,
        echoes=[(48, "bearer")]),
    "v2-502-html-echoes-password": seed(True, 502, "html",
        "<html><body>bad gateway for user root, password </body></html>",
        echoes=[(48, "password")]),
    "v2-404-page-not-found": seed(True, 404, "text", "404 page not found"),
    "v2-503-html-retry-after": seed(True, 503, "html",
        "<html><body><h1>503 Service Unavailable</h1></body></html>", retry=("seconds", 30), attempt=3),
    "v2-429-retry-after-date": seed(True, 429, "text", "slow down", retry=("date", 120)),
    "v2-408-request-timeout": seed(True, 408, "json", '{"code":10001,"message":"request timeout"}'),
}

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "classify")
os.makedirs(here, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(here, "seed-" + name), "wb") as f:
        f.write(data)
print(f"{len(SEEDS)} seeds in {here}")
