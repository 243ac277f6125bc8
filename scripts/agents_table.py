#!/usr/bin/env python3
"""Prints the controller's agents (GET /api/v1/vms) as a table; --check N exits 0 only when
exactly N agents are connected."""
import json
import sys
import urllib.request


def main():
    url = sys.argv[1].rstrip("/") + "/api/v1/vms"
    items = json.load(urllib.request.urlopen(url, timeout=5))["items"]
    if len(sys.argv) > 3 and sys.argv[2] == "--check":
        want = int(sys.argv[3])
        sys.exit(0 if len(items) == want and all(a["connected"] for a in items) else 1)
    row = "  {:8} {:10} {:10} {:10} {:18} {:>10} {:>8}"
    print(row.format("VM", "POOL", "CONNECTED", "TRANSPORT", "STATE", "HEARTBEATS", "PENDING"))
    for a in sorted(items, key=lambda a: a["vm_id"]):
        print(row.format(a["vm_id"], a["pool_id"], str(a["connected"]), a["transport"] or "-",
                         a["miglet_state"] or "-", int(a["heartbeats"]),
                         int(a["pending_commands"])))


if __name__ == "__main__":
    main()
