//! Recipe workloads: the five things applications build on ZooKeeper, played by
//! simulated clients (and by the chaos harness's clients on a real network), so that
//! their guarantees are checked under every fault (`crate::check::recipes`).
//!
//! Each client takes one role, by its id (`id % 5`):
//! - **lock** (0): the standard recipe. Create `/recipes/lock/c<client>-s<session>-`
//!   ephemeral-sequential (create2, so the reply carries the node's czxid); list the
//!   children; the lowest sequence number holds the lock. The holder's fencing token is
//!   its node's czxid, unique and growing with every acquisition. Holding, it acts on a
//!   protected resource a few times, then releases by deleting its node. A lost create
//!   is recovered by finding its own prefix among the children (Curator's "protected"
//!   mode), its token then read with exists.
//! - **election** (1): the same recipe at `/recipes/election`, a leader acting many
//!   times per term (its epoch is its node's czxid) before it abdicates; failover is
//!   a session that expires, its node gone, the next in line taking over.
//! - **queue** (2): produce an item (`/recipes/queue/item-`, persistent-sequential),
//!   then take one: list the queue (after a sync) and delete the lowest item; the
//!   delete that succeeds is the one take.
//! - **config** (3): client 3 writes `/recipes/config` (values 1, 2, ...), one write
//!   every few steps; every
//!   other config client reads it with a watch, re-reads on each event, and now and
//!   then (and at its end) reads it after a sync, without a watch.
//! - **registry** (4): register `/recipes/registry/m-c<client>-s<session>` (ephemeral)
//!   for each new session, then repeatedly list the registry after a sync.
//!
//! Acting on a protected resource is not a ZooKeeper request: the client records an
//! [`ActRecord`] in the history, and the checker plays the resource. A *fenced* act
//! carries the token and the resource refuses one older than a token it has seen; an
//! *unfenced* act (the classic pitfall) carries none and is always accepted.

use std::collections::VecDeque;

use paddock_core::acl::Acl;
use paddock_core::error::ZkError;
use paddock_core::ids::SessionId;
use paddock_core::wire::{
    CreateRequest, DeleteRequest, PathRequest, PathWatchRequest, Request, Response, SetDataRequest,
    WatcherEvent,
};

use crate::history::{ClientId, Outcome};

/// Where every recipe keeps its znodes.
pub const ROOT: &str = "/recipes";
/// The lock's parent.
pub const LOCK: &str = "/recipes/lock";
/// The election's parent.
pub const ELECTION: &str = "/recipes/election";
/// The queue's parent.
pub const QUEUE: &str = "/recipes/queue";
/// The configuration znode.
pub const CONFIG: &str = "/recipes/config";
/// The registry's parent.
pub const REGISTRY: &str = "/recipes/registry";
/// The client that writes the configuration.
pub const CONFIG_WRITER: ClientId = 3;
/// Acts of a lock holder before it releases.
const LOCK_ACTS: u32 = 3;
/// Acts of an elected leader before it abdicates.
const ELECTION_ACTS: u32 = 20;
/// A configuration watcher looks (sync, then read without a watch) every this many idle
/// steps, and as its last operations.
const WATCHER_LOOK_EVERY: u32 = 10;
/// Idle steps of the configuration writer between two writes.
const WRITER_IDLE_STEPS: u32 = 4;

/// Which workload the clients run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkloadKind {
    /// Every ZooKeeper operation at random (`crate::workload`).
    #[default]
    Mixed,
    /// The recipes, used safely (locks and elections fence their acts).
    Recipes,
    /// The recipes with the classic pitfall: lock holders and leaders act without
    /// their fencing token.
    RecipesUnfenced,
}

impl WorkloadKind {
    /// The name `--workload` takes.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Mixed => "mixed",
            WorkloadKind::Recipes => "recipes",
            WorkloadKind::RecipesUnfenced => "recipes-unfenced",
        }
    }
}

impl std::str::FromStr for WorkloadKind {
    type Err = String;
    fn from_str(name: &str) -> Result<WorkloadKind, String> {
        match name {
            "mixed" => Ok(WorkloadKind::Mixed),
            "recipes" => Ok(WorkloadKind::Recipes),
            "recipes-unfenced" => Ok(WorkloadKind::RecipesUnfenced),
            other => Err(format!(
                "unknown workload {other:?} (mixed, recipes, recipes-unfenced)"
            )),
        }
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One act on a protected resource, as the client performed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActRecord {
    /// The client.
    pub client: ClientId,
    /// Its session when it acted (the one whose node gave the token).
    pub session: SessionId,
    /// The resource ("lock" or "election").
    pub resource: &'static str,
    /// The fencing token (the node's czxid).
    pub token: i64,
    /// The act carried its token (the resource refuses stale ones).
    pub fenced: bool,
    /// When, ms (the history's clock).
    pub at_ms: u64,
}

/// A client's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Lock client.
    Lock,
    /// Election candidate.
    Election,
    /// Queue producer and consumer.
    Queue,
    /// Writes the configuration.
    ConfigWriter,
    /// Watches the configuration.
    ConfigWatcher,
    /// Registers itself and lists the registry.
    Registry,
}

impl Role {
    /// The role of client `id`.
    pub fn of(id: ClientId) -> Role {
        match id % 5 {
            0 => Role::Lock,
            1 => Role::Election,
            2 => Role::Queue,
            3 if id == CONFIG_WRITER => Role::ConfigWriter,
            3 => Role::ConfigWatcher,
            _ => Role::Registry,
        }
    }

    fn parent(self) -> &'static str {
        match self {
            Role::Lock => LOCK,
            Role::Election => ELECTION,
            Role::Queue => QUEUE,
            Role::ConfigWriter | Role::ConfigWatcher => CONFIG,
            Role::Registry => REGISTRY,
        }
    }
}

/// What the client does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these requests, in order.
    Send(Vec<Request>),
    /// Act on the protected resource (the client records it when it performs it).
    Act {
        /// The resource.
        resource: &'static str,
        /// The token.
        token: i64,
        /// Whether the act carries it.
        fenced: bool,
    },
    /// Nothing to do now (waiting for a watch event, or pacing writes).
    Idle,
}

/// Lock and election progress.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Holder {
    /// No node: create one.
    Start,
    /// List the children: is our node (known, or found by prefix) the lowest?
    Check {
        path: Option<String>,
        token: Option<i64>,
    },
    /// Our node was found by prefix: read its czxid.
    Adopt { path: String },
    /// Holding, with acts left before the release.
    Holding {
        path: String,
        token: i64,
        acts_left: u32,
    },
    /// Deleting our node.
    Release { path: String },
}

/// One client's recipe state.
#[derive(Debug, Clone)]
pub struct Recipe {
    client: ClientId,
    role: Role,
    fenced: bool,
    session: Option<SessionId>,
    /// Parents still to create (once per client; again after a NONODE).
    setup: VecDeque<Request>,
    holder: Holder,
    /// Queue: items listed and not yet tried; whether to produce next.
    candidates: VecDeque<String>,
    produce_next: bool,
    produced: u64,
    /// Config writer: values written, and idle steps left before the next write.
    written: u32,
    idle_left: u32,
    /// Config watcher: idle steps so far (it looks every `WATCHER_LOOK_EVERY`).
    idle_steps: u32,
    /// Config watcher: an event arrived (or the session is new): re-read.
    dirty: bool,
    /// Registry: this session's node is registered.
    registered: bool,
}

fn create(path: String, data: Vec<u8>, flags: i32) -> CreateRequest {
    CreateRequest {
        path,
        data: Some(data),
        acl: Acl::open_unsafe(),
        flags,
    }
}

/// The sequence number ZooKeeper appended to a sequential node's name (its last ten
/// digits), for ordering.
pub fn sequence_of(name: &str) -> Option<u64> {
    let digits = name.get(name.len().checked_sub(10)?..)?;
    digits.parse().ok()
}

/// The name prefix of client `client`'s lock or election node in `session`.
pub fn holder_prefix(client: ClientId, session: SessionId) -> String {
    format!("c{client}-s{:x}-", session.0)
}

/// The registry node of client `client` in `session`.
pub fn member_name(client: ClientId, session: SessionId) -> String {
    format!("m-c{client}-s{:x}", session.0)
}

fn parent_setup(role: Role) -> VecDeque<Request> {
    // The configuration's own node is its "parent", made with value 0.
    VecDeque::from([
        Request::Create(create(ROOT.to_owned(), Vec::new(), 0)),
        Request::Create(create(role.parent().to_owned(), b"0".to_vec(), 0)),
    ])
}

impl Recipe {
    /// Client `client`'s recipe; `fenced` makes locks and elections fence their acts.
    pub fn new(client: ClientId, fenced: bool) -> Recipe {
        let role = Role::of(client);
        Recipe {
            client,
            role,
            fenced,
            session: None,
            setup: parent_setup(role),
            holder: Holder::Start,
            candidates: VecDeque::new(),
            produce_next: true,
            produced: 0,
            written: 0,
            idle_left: 0,
            idle_steps: 0,
            dirty: true,
            registered: false,
        }
    }

    /// The client's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The next step, in `session`, with `ops_left` operations left before the client
    /// closes its session.
    pub fn next(&mut self, session: SessionId, ops_left: u64) -> Step {
        if self.session != Some(session) {
            // A new session: its ephemerals and watches are gone; start over.
            self.session = Some(session);
            self.holder = Holder::Start;
            self.registered = false;
            self.dirty = true;
        }
        if let Some(request) = self.setup.pop_front() {
            return Step::Send(vec![request]);
        }
        match self.role {
            Role::Lock => self.next_holder(session, LOCK, "lock"),
            Role::Election => self.next_holder(session, ELECTION, "election"),
            Role::Queue => self.next_queue(),
            Role::ConfigWriter => self.next_writer(),
            Role::ConfigWatcher => self.next_watcher(ops_left),
            Role::Registry => self.next_registry(session),
        }
    }

    fn next_holder(&mut self, session: SessionId, parent: &str, resource: &'static str) -> Step {
        match &mut self.holder {
            Holder::Start => {
                let path = format!("{parent}/{}", holder_prefix(self.client, session));
                Step::Send(vec![Request::Create2(create(path, Vec::new(), 3))])
            }
            Holder::Check { .. } => Step::Send(vec![Request::GetChildren(PathWatchRequest {
                path: parent.to_owned(),
                watch: false,
            })]),
            Holder::Adopt { path } => Step::Send(vec![Request::Exists(PathWatchRequest {
                path: path.clone(),
                watch: false,
            })]),
            Holder::Holding {
                token, acts_left, ..
            } if *acts_left > 0 => {
                *acts_left -= 1;
                Step::Act {
                    resource,
                    token: *token,
                    fenced: self.fenced,
                }
            }
            Holder::Holding { path, .. } => {
                let path = path.clone();
                self.holder = Holder::Release { path: path.clone() };
                Step::Send(vec![Request::Delete(DeleteRequest { path, version: -1 })])
            }
            Holder::Release { path } => Step::Send(vec![Request::Delete(DeleteRequest {
                path: path.clone(),
                version: -1,
            })]),
        }
    }

    fn next_queue(&mut self) -> Step {
        if self.produce_next {
            self.produce_next = false;
            self.produced += 1;
            let data = format!("c{}-{}", self.client, self.produced).into_bytes();
            return Step::Send(vec![Request::Create(create(
                format!("{QUEUE}/item-"),
                data,
                2,
            ))]);
        }
        match self.candidates.front() {
            Some(item) => Step::Send(vec![Request::Delete(DeleteRequest {
                path: format!("{QUEUE}/{item}"),
                version: -1,
            })]),
            None => Step::Send(vec![
                Request::Sync(PathRequest {
                    path: QUEUE.to_owned(),
                }),
                Request::GetChildren(PathWatchRequest {
                    path: QUEUE.to_owned(),
                    watch: false,
                }),
            ]),
        }
    }

    fn next_writer(&mut self) -> Step {
        if self.idle_left > 0 {
            self.idle_left = self.idle_left.saturating_sub(1);
            return Step::Idle;
        }
        Step::Send(vec![Request::SetData(SetDataRequest {
            path: CONFIG.to_owned(),
            data: Some((self.written + 1).to_string().into_bytes()),
            version: -1,
        })])
    }

    fn next_watcher(&mut self, ops_left: u64) -> Step {
        if self.dirty {
            self.dirty = false;
            return Step::Send(vec![Request::GetData(PathWatchRequest {
                path: CONFIG.to_owned(),
                watch: true,
            })]);
        }
        self.idle_steps += 1;
        if ops_left == 3 || self.idle_steps.is_multiple_of(WATCHER_LOOK_EVERY) {
            // A look: sync, then read without a watch (always as the last thing).
            return Step::Send(vec![
                Request::Sync(PathRequest {
                    path: CONFIG.to_owned(),
                }),
                Request::GetData(PathWatchRequest {
                    path: CONFIG.to_owned(),
                    watch: false,
                }),
            ]);
        }
        Step::Idle
    }

    fn next_registry(&mut self, session: SessionId) -> Step {
        if !self.registered {
            let path = format!("{REGISTRY}/{}", member_name(self.client, session));
            return Step::Send(vec![Request::Create(create(path, Vec::new(), 1))]);
        }
        Step::Send(vec![
            Request::Sync(PathRequest {
                path: REGISTRY.to_owned(),
            }),
            Request::GetChildren(PathWatchRequest {
                path: REGISTRY.to_owned(),
                watch: false,
            }),
        ])
    }

    /// A watch event arrived.
    pub fn event(&mut self, event: &WatcherEvent) {
        if self.role == Role::ConfigWatcher && event.path == CONFIG {
            self.dirty = true;
        }
    }

    /// A request the recipe asked for finished with `outcome`.
    pub fn observe(&mut self, request: &Request, outcome: &Outcome) {
        let (err, response) = match outcome {
            Outcome::Reply { err, response, .. } => (Some(*err), response.as_ref()),
            Outcome::Lost | Outcome::Pending => (None, None),
        };
        if err == Some(ZkError::NoNode.code())
            && matches!(request, Request::Create(_) | Request::Create2(_))
        {
            // A parent is missing (its create was lost): make them again.
            self.setup = parent_setup(self.role);
            self.holder = Holder::Start;
            return;
        }
        match self.role {
            Role::Lock | Role::Election => self.observe_holder(request, err, response),
            Role::Queue => self.observe_queue(request, err, response),
            Role::ConfigWriter => {
                if matches!(request, Request::SetData(_)) && err.is_some() {
                    self.written += 1;
                    self.idle_left = WRITER_IDLE_STEPS;
                }
            }
            Role::ConfigWatcher => {
                if matches!(request, Request::GetData(r) if r.watch) && err != Some(0) {
                    // No watch was left: read again.
                    self.dirty = true;
                }
            }
            Role::Registry => {
                if matches!(request, Request::Create(_))
                    && (err == Some(0) || err == Some(ZkError::NodeExists.code()))
                {
                    self.registered = true;
                }
            }
        }
    }

    fn observe_holder(&mut self, request: &Request, err: Option<i32>, response: Option<&Response>) {
        let Some(session) = self.session else {
            return;
        };
        let prefix = holder_prefix(self.client, session);
        match (&self.holder, request) {
            (Holder::Start, Request::Create2(_)) => {
                self.holder = match response {
                    Some(Response::Create2(r)) => Holder::Check {
                        path: Some(r.path.clone()),
                        token: Some(r.stat.czxid),
                    },
                    // Lost, or refused: look for our node among the children.
                    _ => Holder::Check {
                        path: None,
                        token: None,
                    },
                };
            }
            (Holder::Check { path, token }, Request::GetChildren(r)) => {
                let Some(Response::GetChildren(children)) = response else {
                    return;
                };
                let parent = r.path.clone();
                let mine = children
                    .iter()
                    .find(|c| match path {
                        Some(p) => p.rsplit('/').next() == Some(c.as_str()),
                        None => c.starts_with(&prefix),
                    })
                    .cloned();
                let Some(mine) = mine else {
                    // Our node is gone (or was never made): start again.
                    self.holder = Holder::Start;
                    return;
                };
                let full = format!("{parent}/{mine}");
                let Some(token) = *token else {
                    self.holder = Holder::Adopt { path: full };
                    return;
                };
                let lowest = children
                    .iter()
                    .filter_map(|c| sequence_of(c))
                    .min()
                    .is_some_and(|low| Some(low) == sequence_of(&mine));
                if lowest {
                    self.holder = Holder::Holding {
                        path: full,
                        token,
                        acts_left: if self.role == Role::Lock {
                            LOCK_ACTS
                        } else {
                            ELECTION_ACTS
                        },
                    };
                }
            }
            (Holder::Adopt { path }, Request::Exists(_)) => {
                self.holder = match response {
                    Some(Response::Stat(stat)) => Holder::Check {
                        path: Some(path.clone()),
                        token: Some(stat.czxid),
                    },
                    _ if err == Some(ZkError::NoNode.code()) => Holder::Start,
                    _ => return,
                };
            }
            // Deleted, or already gone (NONODE): either way released.
            (Holder::Release { .. }, Request::Delete(_)) if err.is_some() => {
                self.holder = Holder::Start;
            }
            _ => {}
        }
    }

    fn observe_queue(&mut self, request: &Request, err: Option<i32>, response: Option<&Response>) {
        match request {
            Request::GetChildren(_) => {
                let mut items: Vec<String> = match response {
                    Some(Response::GetChildren(children)) => children.clone(),
                    _ => Vec::new(),
                };
                items.sort_by_key(|c| sequence_of(c));
                items.truncate(4);
                self.candidates = items.into();
                if self.candidates.is_empty() {
                    self.produce_next = true;
                }
            }
            Request::Delete(_) => {
                self.candidates.pop_front();
                if err == Some(0) || self.candidates.is_empty() {
                    // Taken (or nothing left to try): produce the next.
                    self.candidates.clear();
                    self.produce_next = true;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use paddock_core::stat::Stat;
    use paddock_core::wire::{Create2Response, CreateResponse};

    fn ok(response: Response) -> Outcome {
        Outcome::Reply {
            zxid: 1,
            err: 0,
            response: Some(response),
        }
    }

    fn send(step: Step) -> Request {
        match step {
            Step::Send(mut requests) => requests.remove(0),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    /// Answers the recipe's two parent creates.
    fn set_up(recipe: &mut Recipe, session: SessionId) {
        for _ in 0..2 {
            let setup = send(recipe.next(session, 100));
            assert!(matches!(setup, Request::Create(_)), "{setup:?}");
            recipe.observe(
                &setup,
                &ok(Response::Create(CreateResponse {
                    path: String::new(),
                })),
            );
        }
    }

    // A lock client creates its node, holds when it is the lowest, acts three times with
    // its czxid as token, then deletes its node.
    #[test]
    fn a_lock_client_acquires_acts_and_releases() {
        let session = SessionId(0xab);
        let mut recipe = Recipe::new(0, true);
        set_up(&mut recipe, session);
        let create = send(recipe.next(session, 100));
        let Request::Create2(c) = &create else {
            panic!("{create:?}")
        };
        assert_eq!(c.path, "/recipes/lock/c0-sab-");
        assert_eq!(c.flags, 3);
        let stat = Stat {
            czxid: 77,
            ..Stat::default()
        };
        let path = "/recipes/lock/c0-sab-0000000004".to_owned();
        recipe.observe(
            &create,
            &ok(Response::Create2(Create2Response {
                path: path.clone(),
                stat,
            })),
        );
        let list = send(recipe.next(session, 100));
        // Another node is lower: wait (list again).
        recipe.observe(
            &list,
            &ok(Response::GetChildren(vec![
                "c0-sab-0000000004".into(),
                "c5-s1-0000000003".into(),
            ])),
        );
        let list = send(recipe.next(session, 100));
        recipe.observe(
            &list,
            &ok(Response::GetChildren(vec!["c0-sab-0000000004".into()])),
        );
        for _ in 0..LOCK_ACTS {
            assert_eq!(
                recipe.next(session, 100),
                Step::Act {
                    resource: "lock",
                    token: 77,
                    fenced: true
                }
            );
        }
        assert_eq!(
            send(recipe.next(session, 100)),
            Request::Delete(DeleteRequest { path, version: -1 })
        );
    }

    // A watcher re-reads the configuration on each event, and reads it after a sync at
    // its end.
    #[test]
    fn a_config_watcher_reads_on_events() {
        let session = SessionId(1);
        let mut recipe = Recipe::new(8, true);
        assert_eq!(recipe.role(), Role::ConfigWatcher);
        set_up(&mut recipe, session);
        let read = send(recipe.next(session, 100));
        assert!(matches!(&read, Request::GetData(r) if r.watch));
        assert_eq!(recipe.next(session, 100), Step::Idle);
        recipe.event(&WatcherEvent {
            event_type: 3,
            state: 3,
            path: CONFIG.to_owned(),
        });
        assert!(matches!(send(recipe.next(session, 100)), Request::GetData(r) if r.watch));
        let Step::Send(last) = recipe.next(session, 3) else {
            panic!()
        };
        assert!(matches!(last[..], [Request::Sync(_), Request::GetData(ref r)] if !r.watch));
    }

    #[test]
    fn sequence_numbers_are_the_last_ten_digits() {
        assert_eq!(sequence_of("c1-s2-0000000012"), Some(12));
        assert_eq!(sequence_of("short"), None);
    }
}
