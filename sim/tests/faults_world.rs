//! The world's side of the faults: client connections stay FIFO under wild latency,
//! paused servers queue their input instead of losing it, skewed clocks stay monotonic,
//! and a server whose disk was damaged never starts again.
#![allow(clippy::unwrap_used)]

use paddock_core::ids::{ConnId, NodeId};
use paddock_core::node::Input;
use paddock_sim::decide::Decisions;
use paddock_sim::faults::{FaultPlan, Latency};
use paddock_sim::net::{Direction, Network};
use paddock_sim::options::{Fault, FaultSet, RunOptions};
use paddock_sim::trace::Trace;
use paddock_sim::world::World;

// Bytes on one client connection arrive in the order sent in each direction, even with
// latency spikes that reorder peer messages.
#[test]
fn client_connections_are_fifo() {
    let plan = FaultPlan {
        latency: Some(Latency {
            ms_min: 1,
            ms_max: 50,
            spike_per_mille: 200,
            spike_ms_max: 3000,
        }),
        ..FaultPlan::default()
    };
    let mut net = Network::new(&plan);
    let mut rng = Decisions::seeded(5);
    for conn in [ConnId(1), ConnId(2)] {
        for direction in [Direction::ToServer, Direction::ToClient] {
            let mut last = 0;
            for now_ms in 0..500 {
                let (at, _) = net.client_arrival(now_ms, conn, direction, &mut rng);
                assert!(
                    at >= last && at > now_ms,
                    "{conn:?} {direction:?} reordered"
                );
                last = at;
            }
        }
    }
    let peer: Vec<u64> = (0..500)
        .flat_map(|now_ms| net.deliveries(now_ms, NodeId(1), NodeId(2), &mut rng).0)
        .collect();
    assert!(
        peer.windows(2).any(|w| w[0] > w[1]),
        "peers never reordered"
    );
}

fn world(seed: u64, faults: &[Fault]) -> World {
    let options = RunOptions {
        seed,
        nodes: 3,
        clients: 2,
        ops: 50,
        faults: FaultSet(faults.iter().copied().collect()),
        bug: None,
        from_disks: None,
        workload: Default::default(),
        preload_znodes: 0,
    };
    World::new(&options, Trace::hash_only())
}

// A paused server keeps what reaches it and processes it, in order, when it resumes.
#[test]
fn pause_queues_inputs_until_resume() {
    let mut w = world(1, &[]);
    while w.run_one(300) {}
    let id = NodeId(1);
    w.servers.get_mut(&id).unwrap().paused_until_ms = w.now_ms + 10_000;
    w.step(id, Input::Tick);
    w.step(id, Input::Tick);
    assert_eq!(w.servers[&id].backlog.len(), 2);
    assert!(w.running(id) && !w.up(id));
    w.heal_all();
    assert!(w.servers[&id].backlog.is_empty());
    assert!(w.up(id));
}

// A skewed clock never runs backwards, at the largest drift either way and any offset.
#[test]
fn skewed_clocks_are_monotonic() {
    let mut w = world(2, &[Fault::Clock]);
    let server = w.servers.get_mut(&NodeId(1)).unwrap();
    for (offset, drift) in [(0, -20_000), (60_000, 20_000), (5, -999_999)] {
        server.clock_offset_ms = offset;
        server.clock_drift_ppm = drift;
        let mut last = 0;
        for now_ms in (0..2_000_000).step_by(7) {
            let clock = server.clock_ms(now_ms);
            assert!(clock >= last, "offset {offset} drift {drift} at {now_ms}");
            last = clock;
        }
    }
}

// A crash that flips a bit in a synced record keeps that server down, through restarts
// and the heal phase; the others come back.
#[test]
fn damaged_server_stays_down() {
    let mut w = world(3, &[]);
    while w.run_one(3_000) {}
    let id = NodeId(2);
    let mut rng = Decisions::seeded(9);
    w.crash(id);
    w.crash(NodeId(3));
    assert!(
        w.servers
            .get_mut(&id)
            .unwrap()
            .disk
            .flip_bit(&mut rng)
            .is_some()
    );
    assert!(!w.start(id));
    w.heal_all();
    assert!(!w.running(id));
    assert!(w.running(NodeId(3)));
    assert_eq!(w.fault_counts().damaged_servers, 1);
}

// After `heal_all` no fault strikes any more: every server whose disk recovers runs
// unpaused, no link is cut or clogged, and the counters stop moving while the run goes
// on for another 20 virtual seconds.
#[test]
fn heal_all_stops_every_fault() {
    let mut w = (0..)
        .map(|seed| world(seed, &Fault::ALL))
        .find(|w| w.plan.crash.is_some() && w.plan.partition.is_some() && w.plan.pause.is_some())
        .unwrap();
    while w.run_one(8_000) {}
    assert!(w.fault_counts().crashes > 0);
    w.heal_all();
    let healed = w.fault_counts();
    let now = w.now_ms;
    for server in w.servers.values() {
        assert!(
            server.node.is_some() || server.disk_damaged,
            "{:?} down",
            server.id
        );
        assert!(server.paused_until_ms <= now && server.backlog.is_empty());
    }
    assert!(w.net.cut.is_empty() && w.net.clogs.is_empty());
    while w.run_one(now + 20_000) {}
    assert_eq!(w.fault_counts(), healed);
}
