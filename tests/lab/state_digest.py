#!/usr/bin/env python3
"""state_digest.py ROOT: what redwarden's policy decides in a root file system, one line per
fact, in a stable order, so that two roots can be compared with diff: the accounts redwarden
makes or changes, and every entry (kind, mode, owner, content hash or link target) under the
folders it writes. Owners are names, read from ROOT's own passwd and group. Content that
differs by design between two correct runs is given as '(volatile)': the generated editor
password, its bcrypt hash in the enforced settings, and the adoption's timestamps."""
import hashlib
import os
import stat
import sys

ACCOUNTS = {"nodered", "pi"}
TREES = ["etc/systemd/system", "etc/redwarden", "var/lib/redwarden", "var/lib/node-red",
         "home/pi/.node-red", "usr/lib/systemd/system/redwarden.service"]
VOLATILE = {"var/lib/redwarden/admin-password", "var/lib/redwarden/adoption",
            "var/lib/redwarden/logins.json", "etc/redwarden/nodered.json"}


def table(root, name):
    with open(os.path.join(root, "etc", name)) as f:
        return [line.rstrip("\n").split(":") for line in f if line.strip()]


def main(root):
    users = {int(r[2]): r[0] for r in table(root, "passwd")}
    groups = {int(r[2]): r[0] for r in table(root, "group")}
    out = []
    for name in ("passwd", "group", "shadow", "gshadow"):
        for row in table(root, name):
            members = set(row[-1].split(",")) if name in ("group", "gshadow") else set()
            if row[0] in ACCOUNTS or members & ACCOUNTS:
                if name == "shadow":
                    row[2] = "(day)"  # the day of the last password change
                out.append(f"{name}: {':'.join(row)}")
    for top in TREES:
        base = os.path.join(root, top)
        if not os.path.lexists(base):
            out.append(f"{top}: missing")
            continue
        walk = os.walk(base) if os.path.isdir(base) else [(os.path.dirname(base), [], [os.path.basename(base)])]
        for folder, dirs, files in walk:
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, root)
                st = os.lstat(path)
                owner = f"{users.get(st.st_uid, st.st_uid)}:{groups.get(st.st_gid, st.st_gid)}"
                mode = f"{stat.S_IMODE(st.st_mode):04o}"
                if stat.S_ISLNK(st.st_mode):
                    what = "-> " + os.readlink(path)
                elif stat.S_ISDIR(st.st_mode):
                    what = "dir"
                elif rel in VOLATILE:
                    what = "(volatile)"
                else:
                    with open(path, "rb") as f:
                        what = hashlib.sha256(f.read()).hexdigest()[:16]
                out.append(f"{rel} {mode} {owner} {what}")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
