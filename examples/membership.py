"""membership.py — nodes register under /nodes/<id> with a lease; a watcher prints who
joins (PUT), who leaves cleanly (DELETE: the node revoked its lease) and who dies
(EXPIRED: nobody renewed the lease for its TTL).

    python3 examples/membership.py [url]      (default mem://)

On mem:// every node lives in this process, so node 2's death is played by
Lease.abandon(), which stops the library's keepalive exactly as a crash would. On NATS,
run a node in another process and kill -9 it: the watcher prints the same line.
Run it with the binding on the path, e.g. PYTHONPATH=bindings/python and
COORDKV_LIB=target/debug/libcoordkv.so from the repository root.
"""

import json
import sys
import time

import coordkv
from coordkv import EventKind

WHAT = {EventKind.PUT: "joined", EventKind.DELETE: "left",
        EventKind.EXPIRED: "DIED (its lease expired)"}


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "mem://"
    # A 1 s marker TTL lets NATS grant the 2 s leases as asked (see the README).
    config = {"url": url, "bucket": "membership", "marker_ttl_ms": 1000}
    started = time.monotonic()

    def show(event: coordkv.Event) -> None:
        if event.kind in WHAT and event.entry is not None:
            print(f"[{time.monotonic() - started:5.2f}s] {event.entry.key} "
                  f"{WHAT[event.kind]} (revision {event.revision})", flush=True)

    with coordkv.open_config(json.dumps(config)) as store:
        with store.watch_callback("/nodes/", show, prefix=True):
            one = store.lease(2.0)
            two = store.lease(2.0)
            store.put("/nodes/n-1", "10.0.0.1:7000", lease=one)
            store.put("/nodes/n-2", "10.0.0.2:7000", lease=two)
            print("two nodes with 2 s leases; the library renews them (quietly)")
            time.sleep(3)
            print("n-1 shuts down cleanly (revokes its lease); n-2 crashes (its keepalive stops)")
            one.revoke()
            two.abandon()
            time.sleep(3)


if __name__ == "__main__":
    main()
