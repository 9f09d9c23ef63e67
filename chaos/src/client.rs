//! `client`: the simulator's clients on real sockets.
//!
//! Each client is a [`SimClient`] — the same sans-IO client, workload and history
//! recording the simulator runs — driven by one thread over real TCP: its `Connect`,
//! `Send` and `Close` actions become socket calls, and what the socket reads goes back
//! into it. So a real run's history has the simulator's shape and its checkers read it
//! unchanged. What differs: time is the wall clock (ms since the run started), and
//! connection ids are the harness's own (the servers' are not visible to a client), so
//! [`crate::verdict`] links committed entries to operations by xid, which is why each
//! client numbers its requests from its own range ([`first_xid`]).

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use paddock_core::ids::{ConnId, NodeId};
use paddock_sim::client::{Action, SimClient};
use paddock_sim::decide::Decisions;
use paddock_sim::history::{ClientId, History};

/// Operations a client may start in one run: more than any run performs (a run stops
/// its clients, it does not wait for them to finish).
const OPS_PER_CLIENT: u64 = 1 << 40;
/// How long a connect may take before the client counts the server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long a send may block (a paused server stops reading) before the connection is
/// given up.
const WRITE_TIMEOUT: Duration = Duration::from_millis(2000);
/// Longest wait in one read, so the thread sees its wake-ups and the stop flag.
const READ_SLICE: Duration = Duration::from_millis(20);
/// Xids per client: client `c` numbers its requests from `c * XIDS_PER_CLIENT + 1`.
pub const XIDS_PER_CLIENT: i32 = 10_000_000;

/// The first xid of client `id`.
pub fn first_xid(id: ClientId) -> i32 {
    i32::try_from(id)
        .ok()
        .and_then(|id| id.checked_mul(XIDS_PER_CLIENT))
        .and_then(|base| base.checked_add(1))
        .unwrap_or(1)
}

/// What every client thread shares: the history, the run's clock and connection ids.
#[derive(Debug)]
pub struct Shared {
    history: Mutex<History>,
    start: Instant,
    next_conn: AtomicU64,
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}

impl Shared {
    /// An empty history; the run's clock starts now.
    pub fn new() -> Shared {
        Shared {
            history: Mutex::new(History::default()),
            start: Instant::now(),
            next_conn: AtomicU64::new(1),
        }
    }

    /// Ms since the run started.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The history, locked.
    pub fn history(&self) -> MutexGuard<'_, History> {
        // A client thread that panicked leaves a history that is still whole per call.
        self.history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The history, taken out once every client stopped.
    pub fn into_history(self) -> History {
        self.history
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One client's settings.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// The client.
    pub id: ClientId,
    /// Each server's client address, server `i` (1-based) at `servers[i - 1]`.
    pub servers: Vec<SocketAddr>,
    /// The address servers see it connect from.
    pub address: IpAddr,
    /// Seeds its choices of operations and servers.
    pub seed: u64,
    /// Plays its recipe (`paddock_sim::recipes`, by its id) instead of the random mix:
    /// `Some(true)` fencing lock and leader acts with their token, `Some(false)` not.
    pub recipe: Option<bool>,
}

/// The open connection.
struct Link {
    conn: ConnId,
    stream: TcpStream,
}

/// Runs client `spec` until `stop` is set. The calling thread must already be in the
/// network the servers are reached from.
pub fn run(spec: &ClientSpec, shared: &Shared, stop: &AtomicBool) {
    let servers = u64::try_from(spec.servers.len()).unwrap_or(1);
    // Recipe clients stall now and then (client faults), so that a lock holder's session
    // can expire under it; the random mix leaves faults to the harness.
    let mut client = SimClient::new(spec.id, servers, OPS_PER_CLIENT, spec.recipe.is_some())
        .with_first_xid(first_xid(spec.id))
        .with_address(spec.address);
    if let Some(fenced) = spec.recipe {
        client = client.with_recipe(fenced);
    }
    let mut rng =
        Decisions::seeded(spec.seed ^ u64::from(spec.id).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut link: Option<Link> = None;
    let mut wake_at = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let now = shared.now_ms();
        if now >= wake_at {
            let (actions, next) = client.wake(now, &mut rng, &mut shared.history());
            wake_at = next;
            perform(spec, &mut client, &mut rng, shared, &mut link, actions);
        }
        let slice =
            Duration::from_millis(wake_at.saturating_sub(shared.now_ms()).max(1)).min(READ_SLICE);
        let Some(open) = &mut link else {
            std::thread::sleep(slice);
            continue;
        };
        let _ = open.stream.set_read_timeout(Some(slice));
        match open.stream.read(&mut buffer) {
            Ok(0) => lost(&mut client, shared, &mut link),
            Ok(n) => {
                let now = shared.now_ms();
                let actions = client.receive(now, &buffer[..n], &mut rng, &mut shared.history());
                perform(spec, &mut client, &mut rng, shared, &mut link, actions);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => lost(&mut client, shared, &mut link),
        }
    }
}

/// The connection failed: the client learns it is closed.
fn lost(client: &mut SimClient, shared: &Shared, link: &mut Option<Link>) {
    if link.take().is_some() {
        client.closed(shared.now_ms(), &mut shared.history());
    }
}

fn perform(
    spec: &ClientSpec,
    client: &mut SimClient,
    rng: &mut Decisions,
    shared: &Shared,
    link: &mut Option<Link>,
    actions: Vec<Action>,
) {
    let _ = rng;
    for action in actions {
        match action {
            Action::Connect { server } => connect(spec, client, shared, link, server),
            Action::Send { conn, bytes } => {
                let Some(open) = link.as_mut().filter(|l| l.conn == conn) else {
                    continue;
                };
                if open.stream.write_all(&bytes).is_err() {
                    lost(client, shared, link);
                }
            }
            Action::Close { conn } => {
                // The client already counts itself closed.
                if link.as_ref().is_some_and(|l| l.conn == conn) {
                    *link = None;
                }
            }
        }
    }
}

fn connect(
    spec: &ClientSpec,
    client: &mut SimClient,
    shared: &Shared,
    link: &mut Option<Link>,
    server: NodeId,
) {
    let conn = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
    let now = shared.now_ms();
    shared
        .history()
        .connected(conn, spec.id, server, now, client.ids().to_vec());
    let address = usize::try_from(server.0)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| spec.servers.get(i));
    let stream = address.and_then(|a| TcpStream::connect_timeout(a, CONNECT_TIMEOUT).ok());
    let now = shared.now_ms();
    let actions = client.opened(now, conn, server, &mut shared.history());
    let Some(stream) = stream else {
        client.closed(now, &mut shared.history());
        return;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    *link = Some(Link { conn, stream });
    for action in actions {
        if let Action::Send { conn: to, bytes } = action
            && let Some(open) = link.as_mut().filter(|l| l.conn == to)
            && open.stream.write_all(&bytes).is_err()
        {
            lost(client, shared, link);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xid_ranges_do_not_overlap() {
        assert_eq!(first_xid(0), 1);
        assert_eq!(first_xid(3), 30_000_001);
        assert!(first_xid(200) > first_xid(199) + 1_000_000);
    }
}
