//! Model-based test: random op sequences run on the tree and on a tiny, obviously correct
//! reference model (a map of path → data/versions/zxids, children found by scanning);
//! results and the whole visible state must agree after every step. Then the same txns,
//! sent through bincode, are replayed on a second tree: digests and snapshot bytes agree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use paddock_core::acl::{Acl, Id};
use paddock_core::error::ZkError;
use paddock_core::ids::{SessionId, Zxid};
use paddock_core::tree::{
    CheckOp, CreateOp, CreateOpcode, DataTree, DeleteOp, MultiOp, Op, OpContext, OpResult,
    SetDataOp, TreeConfig, Txn,
};
use proptest::prelude::*;

const PATHS: &[&str] = &["/a", "/b", "/a/x", "/a/y", "/a/x/z", "/b/x", "/a/"];
const SPECIAL: &[&str] = &["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

/// One random step.
#[derive(Debug, Clone)]
enum Step {
    Create {
        path: usize,
        flags: i32,
        data: Option<Vec<u8>>,
        session: i64,
    },
    Delete {
        path: usize,
        version: i32,
    },
    SetData {
        path: usize,
        data: Option<Vec<u8>>,
        version: i32,
    },
    Multi(Vec<Sub>),
    Close {
        session: i64,
    },
    /// Create a container (opcode 19, `ttl_ms` None) or a TTL node (opcode 21, flags 5).
    CreateSpecial {
        path: usize,
        ttl_ms: Option<i64>,
    },
    /// Run the reaper at `now = last time + advance_ms`: compare the candidates, then
    /// delete each through a DeleteContainer txn.
    Reap {
        advance_ms: i64,
    },
}

/// One op of a random multi.
#[derive(Debug, Clone)]
enum Sub {
    Create { path: usize, flags: i32 },
    Delete { path: usize, version: i32 },
    SetData { path: usize, version: i32 },
    Check { path: usize, version: i32 },
}

fn data() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..4))
}

fn path_index() -> impl Strategy<Value = usize> {
    0..PATHS.len() + SPECIAL.len()
}

fn sub() -> impl Strategy<Value = Sub> {
    prop_oneof![
        (path_index(), 0..4i32).prop_map(|(path, flags)| Sub::Create { path, flags }),
        (path_index(), -1..2i32).prop_map(|(path, version)| Sub::Delete { path, version }),
        (path_index(), -1..2i32).prop_map(|(path, version)| Sub::SetData { path, version }),
        (path_index(), -1..2i32).prop_map(|(path, version)| Sub::Check { path, version }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (path_index(), 0..4i32, data(), 1..3i64)
            .prop_map(|(path, flags, data, session)| Step::Create { path, flags, data, session }),
        2 => (path_index(), -1..3i32).prop_map(|(path, version)| Step::Delete { path, version }),
        2 => (path_index(), data(), -1..3i32)
            .prop_map(|(path, data, version)| Step::SetData { path, data, version }),
        2 => prop::collection::vec(sub(), 0..4).prop_map(Step::Multi),
        1 => (1..3i64).prop_map(|session| Step::Close { session }),
        1 => (path_index(), prop::option::of(1..30i64))
            .prop_map(|(path, ttl_ms)| Step::CreateSpecial { path, ttl_ms }),
        1 => (0..40i64).prop_map(|advance_ms| Step::Reap { advance_ms }),
    ]
}

fn path_of(index: usize) -> &'static str {
    PATHS
        .iter()
        .chain(SPECIAL)
        .nth(index)
        .copied()
        .expect("index in range")
}

/// The reference model's node.
#[derive(Debug, Clone, PartialEq)]
struct MNode {
    data: Option<Vec<u8>>,
    version: i32,
    owner: Option<i64>,
    /// None: plain; Some(None): container; Some(Some(ttl)): TTL node.
    special: Option<Option<i64>>,
    creates: i32,
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    time: (i64, i64),
}

#[derive(Debug, Clone)]
struct Model {
    nodes: BTreeMap<String, MNode>,
}

fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => path[..i].into(),
    }
}

impl Model {
    fn new() -> Model {
        let blank = MNode {
            data: Some(vec![]),
            version: 0,
            owner: None,
            special: None,
            creates: 0,
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            time: (0, 0),
        };
        let nodes = SPECIAL
            .iter()
            .map(|p| (p.to_string(), blank.clone()))
            .collect();
        Model { nodes }
    }

    fn children(&self, path: &str) -> Vec<String> {
        self.nodes
            .keys()
            .filter(|p| p.as_str() != "/" && parent(p) == path)
            .map(|p| p[p.rfind('/').unwrap() + 1..].to_string())
            .collect()
    }

    fn create(
        &mut self,
        req: &str,
        flags: i32,
        data: Option<Vec<u8>>,
        s: i64,
        z: i64,
        t: i64,
    ) -> Result<String, ZkError> {
        let parent_path = parent(req);
        let p = self.nodes.get(&parent_path).ok_or(ZkError::NoNode)?.clone();
        let path = if flags & 2 != 0 {
            format!("{req}{:010}", p.creates)
        } else {
            req.to_string()
        };
        if path.len() > 1 && path.ends_with('/') {
            return Err(ZkError::BadArguments);
        }
        if self.nodes.contains_key(&path) {
            return Err(ZkError::NodeExists);
        }
        if p.owner.is_some() {
            return Err(ZkError::NoChildrenForEphemerals);
        }
        let parent_node = self.nodes.get_mut(&parent_path).unwrap();
        parent_node.creates += 1;
        parent_node.pzxid = z;
        let owner = (flags & 1 != 0).then_some(s);
        let node = MNode {
            data,
            version: 0,
            owner,
            special: None,
            creates: 0,
            czxid: z,
            mzxid: z,
            pzxid: z,
            time: (t, t),
        };
        self.nodes.insert(path.clone(), node);
        Ok(path)
    }

    fn delete(&mut self, path: &str, version: i32, z: i64) -> Result<(), ZkError> {
        if SPECIAL.contains(&path) {
            return Err(ZkError::BadArguments);
        }
        let parent_path = parent(path);
        if !self.nodes.contains_key(&parent_path) {
            return Err(ZkError::NoNode);
        }
        let node = self.nodes.get(path).ok_or(ZkError::NoNode)?;
        if version != -1 && version != node.version {
            return Err(ZkError::BadVersion);
        }
        if !self.children(path).is_empty() {
            return Err(ZkError::NotEmpty);
        }
        self.nodes.remove(path);
        self.nodes.get_mut(&parent_path).unwrap().pzxid = z;
        Ok(())
    }

    fn set_data(
        &mut self,
        path: &str,
        data: Option<Vec<u8>>,
        version: i32,
        z: i64,
        t: i64,
    ) -> Result<(), ZkError> {
        if path.len() > 1 && path.ends_with('/') {
            return Err(ZkError::BadArguments);
        }
        let node = self.nodes.get_mut(path).ok_or(ZkError::NoNode)?;
        if path == "/zookeeper/config" {
            return Err(ZkError::NoAuth);
        }
        if version != -1 && version != node.version {
            return Err(ZkError::BadVersion);
        }
        node.data = data;
        node.version += 1;
        node.mzxid = z;
        node.time.1 = t;
        Ok(())
    }

    fn check(&self, path: &str, version: i32) -> Result<(), ZkError> {
        if path.len() > 1 && path.ends_with('/') {
            return Err(ZkError::BadArguments);
        }
        let node = self.nodes.get(path).ok_or(ZkError::NoNode)?;
        if version != -1 && version != node.version {
            return Err(ZkError::BadVersion);
        }
        Ok(())
    }

    /// Containers that had a child and have none; TTL nodes with no children whose
    /// `now - mtime > ttl`. In path order.
    fn candidates(&self, now: i64) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(p, _)| self.children(p).is_empty())
            .filter(|(_, n)| match n.special {
                Some(None) => n.creates > 0,
                Some(Some(ttl)) => now - n.time.1 > ttl,
                None => false,
            })
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn close(&mut self, session: i64, z: i64) -> Vec<String> {
        let owned: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.owner == Some(session))
            .map(|(p, _)| p.clone())
            .collect();
        for path in &owned {
            self.nodes.remove(path);
            self.nodes.get_mut(&parent(path)).unwrap().pzxid = z;
        }
        owned
    }

    /// A multi on a copy; committed only if every op passed. Returns one entry per op:
    /// the created path, "" for other successes, or the error code layout of docs/protocol.md,
    /// Multi.
    fn multi(&mut self, subs: &[Sub], s: i64, z: i64, t: i64) -> Vec<Result<String, ZkError>> {
        let mut copy = self.clone();
        let mut results = Vec::new();
        for (i, sub) in subs.iter().enumerate() {
            let result = match sub {
                Sub::Create { path, flags } => {
                    copy.create(path_of(*path), *flags, Some(b"m".to_vec()), s, z, t)
                }
                Sub::Delete { path, version } => copy
                    .delete(path_of(*path), *version, z)
                    .map(|_| String::new()),
                Sub::SetData { path, version } => copy
                    .set_data(path_of(*path), Some(b"s".to_vec()), *version, z, t)
                    .map(|_| String::new()),
                Sub::Check { path, version } => {
                    copy.check(path_of(*path), *version).map(|_| String::new())
                }
            };
            if let Err(code) = result {
                let mut layout: Vec<_> = (0..i).map(|_| Err(ZkError::Ok)).collect();
                layout.push(Err(code));
                layout.extend((i + 1..subs.len()).map(|_| Err(ZkError::RuntimeInconsistency)));
                return layout;
            }
            results.push(result);
        }
        *self = copy;
        results
    }
}

fn ctx(zxid: i64, session: i64) -> OpContext {
    OpContext {
        zxid: Zxid(zxid as u64),
        time_ms: zxid * 7,
        session: SessionId(session),
        session_live: true,
        ids: vec![Id::new("ip", "127.0.0.1")],
    }
}

fn create(path: &str, flags: i32, data: Option<Vec<u8>>) -> CreateOp {
    CreateOp {
        opcode: CreateOpcode::Create,
        path: path.into(),
        data,
        acl: Acl::open_unsafe(),
        flags,
    }
}

fn to_multi_op(sub: &Sub) -> MultiOp {
    match sub {
        Sub::Create { path, flags } => {
            MultiOp::Create(create(path_of(*path), *flags, Some(b"m".to_vec())))
        }
        Sub::Delete { path, version } => MultiOp::Delete(DeleteOp {
            path: path_of(*path).into(),
            version: *version,
        }),
        Sub::SetData { path, version } => MultiOp::SetData(SetDataOp {
            path: path_of(*path).into(),
            data: Some(b"s".to_vec()),
            version: *version,
        }),
        Sub::Check { path, version } => MultiOp::Check(CheckOp {
            path: path_of(*path).into(),
            version: *version,
        }),
    }
}

/// An op result in the model's terms: created path, "" for another success, or a code.
fn flatten(result: &OpResult) -> Result<String, ZkError> {
    match result {
        OpResult::Created { path, .. } => Ok(path.clone()),
        OpResult::Error(code) => Err(*code),
        _ => Ok(String::new()),
    }
}

/// Runs a step on both; returns the txn (if prepared) and whether the results agreed.
/// Runs a step on both, asserting the results agree; returns the txns it applied (their
/// zxids are `z`, `z + 1`, ...).
fn run_step(tree: &mut DataTree, model: &mut Model, step: &Step, z: i64) -> Vec<Txn> {
    let t = z * 7;
    let (op, session, expected): (Op, i64, Vec<Result<String, ZkError>>) = match step {
        Step::Create {
            path,
            flags,
            data,
            session,
        } => {
            let expected = model.create(path_of(*path), *flags, data.clone(), *session, z, t);
            (
                Op::Create(create(path_of(*path), *flags, data.clone())),
                *session,
                vec![expected],
            )
        }
        Step::Delete { path, version } => {
            let expected = model
                .delete(path_of(*path), *version, z)
                .map(|_| String::new());
            (
                Op::Delete(DeleteOp {
                    path: path_of(*path).into(),
                    version: *version,
                }),
                1,
                vec![expected],
            )
        }
        Step::SetData {
            path,
            data,
            version,
        } => {
            let expected = model
                .set_data(path_of(*path), data.clone(), *version, z, t)
                .map(|_| String::new());
            let op = SetDataOp {
                path: path_of(*path).into(),
                data: data.clone(),
                version: *version,
            };
            (Op::SetData(op), 1, vec![expected])
        }
        Step::Multi(subs) => {
            let expected = model.multi(subs, 1, z, t);
            (
                Op::Multi(subs.iter().map(to_multi_op).collect()),
                1,
                expected,
            )
        }
        Step::Close { session } => {
            let closed = model.close(*session, z);
            let txn = tree
                .prepare(
                    &Op::CloseSession {
                        session: SessionId(*session),
                    },
                    &ctx(z, 1),
                )
                .unwrap();
            let applied = tree.apply(&txn);
            assert_eq!(applied.closed_ephemerals, closed);
            return vec![txn];
        }
        Step::CreateSpecial { path, ttl_ms } => {
            let expected = model.create(path_of(*path), 0, None, 1, z, t);
            if let (Ok(created), Some(ttl_ms)) = (&expected, ttl_ms) {
                model.nodes.get_mut(created).unwrap().special = Some(Some(*ttl_ms));
            } else if let Ok(created) = &expected {
                model.nodes.get_mut(created).unwrap().special = Some(None);
            }
            let mut op = create(path_of(*path), 4, None);
            if let Some(ttl_ms) = ttl_ms {
                op.opcode = CreateOpcode::CreateTtl { ttl_ms: *ttl_ms };
                op.flags = 5;
            } else {
                op.opcode = CreateOpcode::CreateContainer;
            }
            (Op::Create(op), 1, vec![expected])
        }
        Step::Reap { advance_ms } => return reap(tree, model, z * 7 + advance_ms, z),
    };
    let is_multi = matches!(step, Step::Multi(_));
    match tree.prepare(&op, &ctx(z, session)) {
        Ok(txn) => {
            let applied = tree.apply(&txn);
            let got: Vec<_> = applied.results.iter().map(flatten).collect();
            assert_eq!(got, expected, "step {step:?}");
            vec![txn]
        }
        Err(code) => {
            assert!(
                !is_multi,
                "a multi of a live session is never refused whole"
            );
            assert_eq!(vec![Err(code)], expected, "step {step:?}");
            Vec::new()
        }
    }
}

/// The reaper at `now_ms`: both agree on the candidates, each is deleted through a
/// DeleteContainer txn (zxids from `z`).
fn reap(tree: &mut DataTree, model: &mut Model, now_ms: i64, z: i64) -> Vec<Txn> {
    let candidates = model.candidates(now_ms);
    assert_eq!(
        tree.deletion_candidates(now_ms),
        candidates,
        "candidates at {now_ms}"
    );
    let mut txns = Vec::new();
    for (i, path) in candidates.iter().enumerate() {
        let zxid = z + i as i64;
        model.delete(path, -1, zxid).unwrap();
        let op = Op::DeleteContainer { path: path.clone() };
        let txn = tree.prepare(&op, &ctx(zxid, 1)).unwrap();
        assert_eq!(tree.apply(&txn).results, vec![OpResult::Deleted]);
        txns.push(txn);
    }
    txns
}

/// The whole visible state of the tree equals the model's.
fn assert_same_state(tree: &DataTree, model: &Model) {
    let ids = [Id::new("ip", "127.0.0.1")];
    assert_eq!(tree.node_count(), model.nodes.len());
    for (path, m) in &model.nodes {
        let (data, stat) = tree
            .get_data(path, &ids)
            .unwrap_or_else(|e| panic!("{path}: {e:?}"));
        let children = model.children(path);
        let n = children.len() as i32;
        assert_eq!(data, m.data, "{path} data");
        assert_eq!(stat.version, m.version, "{path} version");
        assert_eq!(stat.cversion, 2 * m.creates - n, "{path} cversion");
        assert_eq!(stat.num_children, n, "{path} numChildren");
        assert_eq!(stat.ephemeral_owner, m.owner.unwrap_or(0), "{path} owner");
        assert_eq!(
            stat.data_length,
            m.data.as_ref().map_or(0, |d| d.len() as i32)
        );
        assert_eq!(
            (stat.czxid, stat.mzxid, stat.pzxid),
            (m.czxid, m.mzxid, m.pzxid),
            "{path} zxids"
        );
        assert_eq!((stat.ctime, stat.mtime), m.time, "{path} times");
        assert_eq!(
            tree.get_children(path, &ids).unwrap(),
            children,
            "{path} children"
        );
    }
    for session in [1, 2] {
        let owned: Vec<_> = model
            .nodes
            .iter()
            .filter(|(_, n)| n.owner == Some(session))
            .map(|(p, _)| p.clone())
            .collect();
        assert_eq!(tree.get_ephemerals(SessionId(session), ""), owned);
    }
}

/// 256 cases from the seed in `PADDOCK_SEED`, or from a fresh random seed that is printed
/// so a failure can be replayed.
fn model_config() -> ProptestConfig {
    use std::hash::{BuildHasher, Hasher};
    let seed = std::env::var("PADDOCK_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        });
    eprintln!("tree_model seed {seed} (replay with PADDOCK_SEED={seed})");
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(model_config())]

    // The tree agrees with the reference model on every result and the whole visible state
    // after every step; replaying its txns (through bincode) on a fresh tree gives an equal
    // tree, equal digest and equal snapshot bytes.
    #[test]
    fn tree_matches_model_and_replays(steps in prop::collection::vec(step(), 1..40)) {
        let mut tree = DataTree::new(TreeConfig::default());
        let mut model = Model::new();
        let mut log = Vec::new();
        let mut zxid = 0;
        for step in &steps {
            let txns = run_step(&mut tree, &mut model, step, zxid + 1);
            zxid += txns.len() as i64;
            log.extend(txns);
            tree.assert_invariants();
            assert_same_state(&tree, &model);
        }
        let config = bincode::config::standard();
        let mut replica = DataTree::new(TreeConfig::default());
        for txn in &log {
            let bytes = bincode::serde::encode_to_vec(txn, config).unwrap();
            let (decoded, _): (Txn, usize) = bincode::serde::decode_from_slice(&bytes, config).unwrap();
            prop_assert_eq!(&decoded, txn);
            replica.apply(&decoded);
        }
        replica.assert_invariants();
        prop_assert_eq!(replica.digest(), tree.digest());
        let snapshot = bincode::serde::encode_to_vec(&tree, config).unwrap();
        prop_assert_eq!(&bincode::serde::encode_to_vec(&replica, config).unwrap(), &snapshot);
        let (restored, _): (DataTree, usize) = bincode::serde::decode_from_slice(&snapshot, config).unwrap();
        prop_assert_eq!(&restored, &tree);
        prop_assert_eq!(restored.digest(), tree.digest());
    }
}

// The digest notices a change to any single part of the state (data, version, ACL,
// ephemeral owner) and does not depend on the order txns were prepared in.
#[test]
fn digest_sensitivity() {
    let base = || {
        let mut tree = DataTree::new(TreeConfig::default());
        let txn = tree
            .prepare(
                &Op::Create(create("/a", 0, Some(b"x".to_vec()))),
                &ctx(1, 1),
            )
            .unwrap();
        tree.apply(&txn);
        tree
    };
    let reference = base().digest();
    assert_eq!(base().digest(), reference);
    let variants: Vec<Op> = vec![
        Op::SetData(SetDataOp {
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            version: -1,
        }),
        Op::SetData(SetDataOp {
            path: "/a".into(),
            data: None,
            version: -1,
        }),
        Op::SetAcl(paddock_core::tree::SetAclOp {
            path: "/a".into(),
            acl: Acl::read_unsafe(),
            version: -1,
        }),
        Op::Create(create("/b", 1, None)),
        Op::Create(create("/b", 0, None)),
    ];
    let mut digests = vec![reference];
    for op in variants {
        let mut tree = base();
        let txn = tree.prepare(&op, &ctx(2, 1)).unwrap();
        tree.apply(&txn);
        digests.push(tree.digest());
    }
    let unique: std::collections::BTreeSet<_> = digests.iter().collect();
    assert_eq!(unique.len(), digests.len(), "digests {digests:x?}");
}
