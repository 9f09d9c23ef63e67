#!/usr/bin/env python3
"""kazoo_tls.py: kazoo 2.11 over TLS (use_ssl=True) against a secure client port.

    kazoo_tls.py --hosts 127.0.0.1:2281 --ca ca.pem --dir DIR --subject 'CN=client1,O=Paddock Test'

DIR holds client1.crt/.key and client2.crt/.key (certificates the CA issued). Prints one line per
step, `step: result`:

- client1 creates /tls-kazoo with an ACL granting everything to x509 id SUBJECT only (its own
  certificate's subject) and reads it back;
- client2 (another certificate of the same CA) is refused reading it (NoAuthError);
- a client without a certificate does not get a session (the server needs one).
"""

import argparse
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl


def client(args, name):
    kwargs = dict(hosts=args.hosts, use_ssl=True, verify_certs=True, ca=args.ca)
    if name is not None:
        kwargs.update(certfile=f"{args.dir}/{name}.crt", keyfile=f"{args.dir}/{name}.key")
    return KazooClient(**kwargs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--subject", required=True)
    args = parser.parse_args()

    owner = client(args, "client1")
    owner.start(timeout=10)
    acl = [make_acl("x509", args.subject, all=True)]
    owner.create("/tls-kazoo", b"over tls", acl=acl)
    data, stat = owner.get("/tls-kazoo")
    print(f"client1-get: {data.decode()} version={stat.version}")
    stored, _ = owner.get_acls("/tls-kazoo")
    print(f"client1-acl: {stored[0].id.scheme}:{stored[0].id.id} perms={stored[0].perms}")
    owner.stop()

    other = client(args, "client2")
    other.start(timeout=10)
    try:
        other.get("/tls-kazoo")
        print("client2-get: allowed")
    except NoAuthError:
        print("client2-get: NoAuthError")
    other.stop()

    anonymous = client(args, None)
    try:
        anonymous.start(timeout=3)
        print("no-certificate: connected")
        anonymous.stop()
    except Exception as error:  # kazoo raises a timeout once every attempt failed
        print(f"no-certificate: refused ({type(error).__name__})")
    anonymous.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
