#!/usr/bin/env python3
"""kazoo_sasl.py: kazoo 2.11 with SASL DIGEST-MD5 (sasl_options) against a client port.

    kazoo_sasl.py --hosts 127.0.0.1:2181

The server's JAAS Server section holds user_bob="bobsecret" and user_admin="adminsecret", and
admin is its zookeeper.superUser. Prints one line per step, `step: result`:

- bob creates /sasl-kazoo with an ACL granting everything to sasl id bob only, and reads it back;
- a client without SASL is refused reading it (NoAuthError);
- admin, the SASL super user, reads it;
- a client with a wrong password gets nothing (kazoo reports its session connected before the
  SASL exchange ends, so the refusal shows on the first request).
"""

import argparse
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl


def client(hosts, user=None, password=None):
    kwargs = dict(hosts=hosts)
    if user is not None:
        kwargs["sasl_options"] = {"mechanism": "DIGEST-MD5", "username": user, "password": password}
    return KazooClient(**kwargs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", required=True)
    args = parser.parse_args()

    bob = client(args.hosts, "bob", "bobsecret")
    bob.start(timeout=10)
    bob.create("/sasl-kazoo", b"over sasl", acl=[make_acl("sasl", "bob", all=True)])
    data, stat = bob.get("/sasl-kazoo")
    print(f"bob-get: {data.decode()} version={stat.version}")
    stored, _ = bob.get_acls("/sasl-kazoo")
    print(f"bob-acl: {stored[0].id.scheme}:{stored[0].id.id} perms={stored[0].perms}")
    bob.stop()

    anonymous = client(args.hosts)
    anonymous.start(timeout=10)
    try:
        anonymous.get("/sasl-kazoo")
        print("anonymous-get: allowed")
    except NoAuthError:
        print("anonymous-get: NoAuthError")
    anonymous.stop()

    admin = client(args.hosts, "admin", "adminsecret")
    admin.start(timeout=10)
    data, _ = admin.get("/sasl-kazoo")
    print(f"admin-get: {data.decode()}")
    admin.stop()

    wrong = client(args.hosts, "bob", "guess")
    try:
        wrong.start(timeout=3)
        wrong.get("/sasl-kazoo")
        print("wrong-password: allowed")
    except Exception as err:  # AuthFailedError, or a timeout when the refusal came first
        print("wrong-password: refused")
        print(f"wrong-password: {type(err).__name__}", file=sys.stderr)
    finally:
        wrong.stop()
        wrong.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
