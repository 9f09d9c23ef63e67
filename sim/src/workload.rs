//! What simulated clients ask for: a random mix of every ZooKeeper 3.8 operation a real
//! client sends (creates in every mode and opcode, deletes, reads, multi and multiRead,
//! sync followed by a read, one-shot and persistent watches, ACLs and digest auth,
//! getEphemerals, getAllChildrenNumber, whoAmI) over a small key space, so that clients
//! contend on the same znodes and every error path (NONODE, NODEEXISTS, BADVERSION,
//! NOTEMPTY, NOAUTH, INVALIDACL, NOCHILDRENFOREPHEMERALS, NOWATCHER...) is reached.
//!
//! A [`Workload`] belongs to one client and remembers the paths its creates returned
//! (sequential names cannot be guessed), so later deletes and writes can target them. It
//! does not track watches or credentials: the client owns those and passes what the next
//! request may need. Nothing here sends bytes or reads the clock.

use std::collections::VecDeque;

use crate::decide::Decisions;
use paddock_core::acl::{self, Acl, Id, perms};
use paddock_core::wire::{
    AddWatchRequest, AuthPacket, CheckVersionRequest, CreateRequest, CreateTtlRequest,
    DeleteRequest, GetEphemeralsRequest, MultiOp, MultiReadOp, MultiResult, PathRequest,
    PathWatchRequest, Request, Response, SetAclRequest, SetDataRequest, WatchesRequest,
};
use rand::RngExt;

use crate::history::Outcome;

/// Top-level keys clients work on (`/k0` .. `/k5`): few, so clients contend.
const KEYS: u32 = 6;
/// Children per key clients name directly (`/kN/c0` .. `/kN/c2`).
const CHILDREN: u32 = 3;
/// Paths returned by this client's creates that it remembers.
const CREATED_PATHS_MAX: usize = 16;
/// Users of the digest credentials the workload hands out.
pub const USERS: [&str; 3] = ["alice", "bob", "carol"];

/// The `user:password` credential of `user`, as sent in an auth packet. A wrong password
/// gives another digest, so it authenticates as nobody the ACLs name.
pub fn credential(user: &str, right_password: bool) -> Vec<u8> {
    let password = if right_password { "secret" } else { "wrong" };
    format!("{user}:{password}").into_bytes()
}

/// The digest ACL entry granting `perms` to `user` (with the right password).
pub fn digest_acl(user: &str, perms: i32) -> Acl {
    Acl {
        perms,
        id: Id::new("digest", &acl::digest_id(user, "secret")),
    }
}

/// One client's workload state.
#[derive(Debug, Default)]
pub struct Workload {
    created: VecDeque<String>,
}

impl Workload {
    /// The next requests of the client: usually one, two for "sync, then read". `held` is
    /// one watch the client holds (path and removeWatches type), if any, so that
    /// removeWatches and checkWatches sometimes name a real one.
    pub fn next(&mut self, rng: &mut Decisions, held: Option<(String, i32)>) -> Vec<Request> {
        match rng.random_range(0..100) {
            0..=11 => vec![self.create(rng)],
            12..=15 => vec![Request::Create2(create_request(self.path(rng), rng))],
            16..=18 => vec![self.create_container(rng)],
            19..=21 => vec![self.create_ttl(rng)],
            22..=29 => vec![Request::Delete(DeleteRequest {
                path: self.path(rng),
                version: version(rng),
            })],
            30..=38 => vec![Request::SetData(SetDataRequest {
                path: self.path(rng),
                data: data(rng),
                version: version(rng),
            })],
            39..=47 => vec![Request::GetData(self.path_watch(rng))],
            48..=52 => vec![Request::Exists(self.path_watch(rng))],
            53..=56 => vec![Request::GetChildren(self.parent_watch(rng))],
            57..=60 => vec![Request::GetChildren2(self.parent_watch(rng))],
            61..=67 => vec![self.multi(rng)],
            68..=69 => vec![self.multi_read(rng)],
            70..=73 => self.sync_then_read(rng),
            74..=76 => vec![add_watch(rng)],
            77..=79 => vec![self.watches_request(rng, held)],
            80..=82 => vec![Request::SetAcl(SetAclRequest {
                path: self.path(rng),
                acl: some_acl(rng),
                version: version(rng),
            })],
            83..=85 => vec![Request::GetAcl(PathRequest {
                path: self.path(rng),
            })],
            86..=88 => vec![add_auth(rng)],
            89..=91 => vec![get_ephemerals(rng)],
            92..=94 => vec![Request::GetAllChildrenNumber(PathRequest {
                path: if rng.random_range(0..4) == 0 {
                    "/".to_owned()
                } else {
                    key(rng)
                },
            })],
            _ => vec![Request::WhoAmI],
        }
    }

    /// Learns from a finished request: the paths its creates returned.
    pub fn observe(&mut self, outcome: &Outcome) {
        let Outcome::Reply {
            err: 0,
            response: Some(response),
            ..
        } = outcome
        else {
            return;
        };
        match response {
            Response::Create(r) => self.remember(&r.path),
            Response::Create2(r) => self.remember(&r.path),
            Response::Multi(results) => {
                for result in results {
                    match result {
                        MultiResult::Create(r) => self.remember(&r.path),
                        MultiResult::Create2(r) => self.remember(&r.path),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn remember(&mut self, path: &str) {
        if self.created.len() >= CREATED_PATHS_MAX {
            self.created.pop_front();
        }
        self.created.push_back(path.to_owned());
    }

    /// A key, a child of a key, or (when there is one) a path this client created.
    fn path(&self, rng: &mut Decisions) -> String {
        match rng.random_range(0..100) {
            0..=54 => key(rng),
            55..=84 => child(rng),
            _ => {
                let len = self.created.len();
                if len == 0 {
                    return key(rng);
                }
                let i = rng.random_range(0..len);
                self.created.get(i).cloned().unwrap_or_else(|| key(rng))
            }
        }
    }

    fn path_watch(&self, rng: &mut Decisions) -> PathWatchRequest {
        PathWatchRequest {
            path: self.path(rng),
            watch: rng.random_range(0..3) == 0,
        }
    }

    /// Children are listed mostly under keys (where they exist) and sometimes at the root.
    fn parent_watch(&self, rng: &mut Decisions) -> PathWatchRequest {
        let path = match rng.random_range(0..10) {
            0 => "/".to_owned(),
            1 => self.path(rng),
            _ => key(rng),
        };
        PathWatchRequest {
            path,
            watch: rng.random_range(0..3) == 0,
        }
    }

    /// create (op 1) in the four modes kazoo and Java send with it.
    fn create(&self, rng: &mut Decisions) -> Request {
        let flags = rng.random_range(0..4);
        let path = if flags & 2 != 0 {
            format!("{}/s-", key(rng))
        } else {
            self.path(rng)
        };
        let mut request = create_request(path, rng);
        request.flags = flags;
        Request::Create(request)
    }

    /// createContainer (op 19, flags 4), as Curator creates parents.
    fn create_container(&self, rng: &mut Decisions) -> Request {
        let mut request = create_request(self.path(rng), rng);
        request.flags = 4;
        Request::CreateContainer(request)
    }

    /// createTTL (op 21, flags 5 or 6); now and then an invalid TTL (BADARGUMENTS).
    fn create_ttl(&self, rng: &mut Decisions) -> Request {
        let flags = 5 + rng.random_range(0..2);
        let path = if flags == 6 {
            format!("{}/t-", key(rng))
        } else {
            self.path(rng)
        };
        let ttl_ms = if rng.random_range(0..10) == 0 {
            0
        } else {
            rng.random_range(1..120_000)
        };
        let base = create_request(path, rng);
        Request::CreateTtl(CreateTtlRequest {
            path: base.path,
            data: base.data,
            acl: base.acl,
            flags,
            ttl_ms,
        })
    }

    /// A multi of 0 to 4 creates, deletes, setData and checks on the shared keys: it fails
    /// (all-or-nothing) often enough to exercise rollback.
    fn multi(&self, rng: &mut Decisions) -> Request {
        let count = rng.random_range(0..5);
        let ops = (0..count)
            .map(|_| match rng.random_range(0..5) {
                0 => {
                    let mut r = create_request(self.path(rng), rng);
                    r.flags = rng.random_range(0..2);
                    MultiOp::Create(r)
                }
                1 => MultiOp::Create2(create_request(self.path(rng), rng)),
                2 => MultiOp::Delete(DeleteRequest {
                    path: self.path(rng),
                    version: version(rng),
                }),
                3 => MultiOp::SetData(SetDataRequest {
                    path: self.path(rng),
                    data: data(rng),
                    version: version(rng),
                }),
                _ => MultiOp::Check(CheckVersionRequest {
                    path: self.path(rng),
                    version: version(rng),
                }),
            })
            .collect();
        Request::Multi(ops)
    }

    fn multi_read(&self, rng: &mut Decisions) -> Request {
        let count = rng.random_range(1..4);
        let ops = (0..count)
            .map(|_| {
                let r = PathWatchRequest {
                    path: self.path(rng),
                    watch: false,
                };
                if rng.random_range(0..2) == 0 {
                    MultiReadOp::GetData(r)
                } else {
                    MultiReadOp::GetChildren(r)
                }
            })
            .collect();
        Request::MultiRead(ops)
    }

    /// sync, then a read of the same path: the read must see every write answered before
    /// the sync (the reads checker verifies it).
    fn sync_then_read(&self, rng: &mut Decisions) -> Vec<Request> {
        let path = self.path(rng);
        let read = PathWatchRequest {
            path: path.clone(),
            watch: false,
        };
        let read = match rng.random_range(0..3) {
            0 => Request::GetData(read),
            1 => Request::Exists(read),
            _ => Request::GetChildren2(read),
        };
        vec![Request::Sync(PathRequest { path }), read]
    }

    /// removeWatches or checkWatches: on a watch the client holds when it has one (mostly),
    /// else on a random path and type (NOWATCHER).
    fn watches_request(&self, rng: &mut Decisions, held: Option<(String, i32)>) -> Request {
        let (path, watcher_type) = match held {
            Some(held) if rng.random_range(0..4) != 0 => held,
            _ => (self.path(rng), rng.random_range(1..4)),
        };
        let request = WatchesRequest { path, watcher_type };
        if rng.random_range(0..3) == 0 {
            Request::CheckWatches(request)
        } else {
            Request::RemoveWatches(request)
        }
    }
}

fn key(rng: &mut Decisions) -> String {
    format!("/k{}", rng.random_range(0..KEYS))
}

fn child(rng: &mut Decisions) -> String {
    format!("{}/c{}", key(rng), rng.random_range(0..CHILDREN))
}

fn data(rng: &mut Decisions) -> Option<Vec<u8>> {
    let len = rng.random_range(0..8);
    Some((0..len).map(|_| rng.random_range(b'a'..=b'z')).collect())
}

/// -1 (any) half the time, else a small version that sometimes matches.
fn version(rng: &mut Decisions) -> i32 {
    if rng.random_range(0..2) == 0 {
        -1
    } else {
        rng.random_range(0..3)
    }
}

/// Mostly open; sometimes CREATOR_ALL (INVALIDACL without a digest credential), a digest
/// user's ALL, or world READ plus a digest user's ALL.
fn some_acl(rng: &mut Decisions) -> Vec<Acl> {
    let user = USERS[rng.random_range(0..USERS.len())];
    match rng.random_range(0..10) {
        0..=6 => Acl::open_unsafe(),
        7 => Acl::creator_all(),
        8 => vec![digest_acl(user, perms::ALL)],
        _ => {
            let mut acl = Acl::read_unsafe();
            acl.push(digest_acl(user, perms::ALL));
            acl
        }
    }
}

fn create_request(path: String, rng: &mut Decisions) -> CreateRequest {
    CreateRequest {
        path,
        data: data(rng),
        acl: some_acl(rng),
        flags: 0,
    }
}

/// addWatch, persistent (mode 0) or persistent-recursive (mode 1), on a key or the root
/// (recursive at the root sees every change).
fn add_watch(rng: &mut Decisions) -> Request {
    let mode = rng.random_range(0..2);
    let path = if rng.random_range(0..8) == 0 {
        "/".to_owned()
    } else {
        key(rng)
    };
    Request::AddWatch(AddWatchRequest { path, mode })
}

/// addauth digest as one of the users, now and then with a wrong password.
fn add_auth(rng: &mut Decisions) -> Request {
    let user = USERS[rng.random_range(0..USERS.len())];
    Request::Auth(AuthPacket {
        auth_type: 0,
        scheme: "digest".to_owned(),
        auth: credential(user, rng.random_range(0..8) != 0),
    })
}

fn get_ephemerals(rng: &mut Decisions) -> Request {
    let prefix_path = match rng.random_range(0..3) {
        0 => "/".to_owned(),
        1 => String::new(),
        _ => key(rng),
    };
    Request::GetEphemerals(GetEphemeralsRequest { prefix_path })
}

/// A short name for a request's kind, distinguishing create modes, versioned writes,
/// watching reads and ACL'd creates, for per-kind tables in tests and reports.
pub fn op_kind(request: &Request) -> &'static str {
    match request {
        Request::Create(r) => match r.flags {
            0 if r.acl != Acl::open_unsafe() => "create-acl",
            0 => "create",
            1 => "create-ephemeral",
            2 => "create-sequential",
            3 => "create-ephemeral-sequential",
            _ => "create-other-flags",
        },
        Request::Create2(_) => "create2",
        Request::CreateContainer(_) => "create-container",
        Request::CreateTtl(r) if r.flags == 6 => "create-ttl-sequential",
        Request::CreateTtl(_) => "create-ttl",
        Request::Delete(r) if r.version == -1 => "delete",
        Request::Delete(_) => "delete-versioned",
        Request::SetData(r) if r.version == -1 => "setData",
        Request::SetData(_) => "setData-versioned",
        Request::GetData(r) if r.watch => "getData-watch",
        Request::GetData(_) => "getData",
        Request::Exists(r) if r.watch => "exists-watch",
        Request::Exists(_) => "exists",
        Request::GetChildren(r) if r.watch => "getChildren-watch",
        Request::GetChildren(_) => "getChildren",
        Request::GetChildren2(r) if r.watch => "getChildren2-watch",
        Request::GetChildren2(_) => "getChildren2",
        Request::Multi(_) => "multi",
        Request::MultiRead(_) => "multiRead",
        Request::Sync(_) => "sync",
        Request::AddWatch(r) if r.mode == 1 => "addWatch-recursive",
        Request::AddWatch(_) => "addWatch-persistent",
        Request::RemoveWatches(_) => "removeWatches",
        Request::CheckWatches(_) => "checkWatches",
        Request::SetAcl(_) => "setACL",
        Request::GetAcl(_) => "getACL",
        Request::Auth(_) => "addauth",
        Request::GetEphemerals(_) => "getEphemerals",
        Request::GetAllChildrenNumber(_) => "getAllChildrenNumber",
        Request::WhoAmI => "whoAmI",
        Request::CloseSession => "closeSession",
        Request::SetWatches(_) => "setWatches",
        Request::SetWatches2(_) => "setWatches2",
        _ => "other",
    }
}
