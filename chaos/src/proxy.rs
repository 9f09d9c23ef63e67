//! `proxy`: a TCP proxy the harness owns, which delays (and so reorders) what passes
//! through it, for links where the kernel offers no `tc netem`.
//!
//! A [`Proxy`] listens on one address and, for every connection it accepts, dials its
//! target and copies bytes both ways: *forward* (from the side that connected to the
//! target) and *backward*. A shared [`Setting`] says how long each chunk of bytes is held
//! before it is passed on, per direction, plus a random jitter; it can be changed at any
//! time, and changing it (switching the delay on or off) never drops a connection.
//!
//! # What delay and reordering mean over TCP
//!
//! Within one TCP stream bytes cannot be reordered: the application sees them in the
//! order they were sent whatever happens to the segments underneath (TCP reassembles
//! them), so a proxy that delivered a stream's bytes out of order would be corrupting it,
//! not simulating a network. What a proxy can honestly do is:
//!
//! - *Delay*: every chunk read from the source is written to the destination no earlier
//!   than `delay + jitter` after it was read (`jitter` drawn uniformly from
//!   `0..=jitter_ms` per chunk; the setting in force when it leaves). The release time of a chunk is never earlier than the
//!   one before it on the same connection and direction, so jitter stretches gaps within
//!   a stream but never reorders it.
//! - *Reordering across connections*: each chunk draws its own jitter and each
//!   connection its own stream of draws, so two messages sent on *different*
//!   connections — server 1 to 2 and server 1 to 3, or a request on one link and the
//!   answer on another — can arrive in another order than they were sent. That is the
//!   only reordering an application over TCP can ever observe, and the one a replication
//!   protocol with one connection per direction and peer must survive.
//!
//! A change of the setting applies to the chunks already held as well: each is re-timed
//! to its read time plus the new delay (see [`Setting::set`]), so switching the delay off
//! lets what is held go at once, in order, and passes new bytes on as they come.
//!
//! # Bounds
//!
//! Per connection and direction at most [`ProxyOptions::held_bytes_max`] bytes are held
//! (read, not yet written). When that much is held the proxy stops reading from the
//! source, whose kernel buffers then fill and whose writes block: TCP's own backpressure,
//! as on a slow link. A destination that does not read (a paused server) is handled the
//! same way: the proxy keeps the bytes, stops reading, and waits. At most
//! [`ProxyOptions::connections_max`] connections are relayed at once (each costs two
//! threads); further ones are closed at accept. Every thread looks at a stop flag at
//! least every [`POLL`] (but while it dials the target, for at most the connect
//! timeout), so [`Proxy::stop`] (and dropping a proxy) ends them all promptly.
//!
//! # Failures
//!
//! When the target cannot be dialled within [`ProxyOptions::connect_timeout`] the
//! accepted connection is closed: the connecting side sees its connection end instead of
//! a connect that fails (that, and the target seeing the proxy's socket as its peer, is
//! where the proxy is not transparent). An end of stream is
//! passed on as one (after the bytes held before it); a reset or any other error closes
//! both connections in both directions, dropping what was held, as a broken link does.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The longest a proxy thread waits before it looks at the stop flag again.
pub const POLL: Duration = Duration::from_millis(20);
/// Bytes read from a source at once, at most.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Why a proxy could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The setup the listening thread runs first (e.g. entering a network namespace)
    /// failed.
    #[error("proxy setup: {0}")]
    Setup(String),
    /// The listen address could not be bound.
    #[error("binding proxy listener {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why not.
        #[source]
        source: io::Error,
    },
    /// A thread could not be started.
    #[error("starting a proxy thread: {0}")]
    Spawn(#[source] io::Error),
    /// The listening thread ended before it said whether it listens.
    #[error("the proxy's listening thread ended early")]
    Gone,
}

/// The delay a proxy applies, shared between the harness and the proxy's threads.
/// A change applies to bytes already held too (see [`Setting::set`]).
#[derive(Debug, Default)]
pub struct Setting {
    forward_ms: AtomicU32,
    backward_ms: AtomicU32,
    jitter_ms: AtomicU32,
    /// Bumped by every change, so pumps re-time what they hold.
    generation: AtomicU64,
}

/// One direction of a relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// From the side that connected to the proxy, to the target.
    Forward,
    /// From the target back.
    Backward,
}

impl Setting {
    /// No delay.
    pub fn new() -> Setting {
        Setting::default()
    }

    /// Holds each chunk `forward` (towards the target) or `backward` (from it) after it
    /// was read, plus a jitter drawn from `0..=jitter` per chunk. Whole milliseconds;
    /// longer than `u32::MAX` ms is capped. Chunks already held are re-timed: each is
    /// released at its read time plus the new delay and at most the new jitter (keeping
    /// its draw), and never before the chunk ahead of it. So lifting a delay lets held
    /// bytes go at once, in order, and every chunk is always held at least the delay in
    /// force when it leaves.
    pub fn set(&self, forward: Duration, backward: Duration, jitter: Duration) {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        self.forward_ms.store(ms(forward), Ordering::Relaxed);
        self.backward_ms.store(ms(backward), Ordering::Relaxed);
        self.jitter_ms.store(ms(jitter), Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// No delay any more: what is held goes at once, in order.
    pub fn clear(&self) {
        self.set(Duration::ZERO, Duration::ZERO, Duration::ZERO);
    }

    /// `(forward, backward, jitter)`.
    pub fn get(&self) -> (Duration, Duration, Duration) {
        let ms = |a: &AtomicU32| Duration::from_millis(u64::from(a.load(Ordering::Relaxed)));
        (
            ms(&self.forward_ms),
            ms(&self.backward_ms),
            ms(&self.jitter_ms),
        )
    }

    /// A jitter draw for a chunk read now, ms (0 without jitter).
    fn draw(&self, rng: &mut ChaCha8Rng) -> u32 {
        match self.jitter_ms.load(Ordering::Relaxed) {
            0 => 0,
            jitter => rng.random_range(0..=jitter),
        }
    }

    /// When a chunk read at `read_at` in `direction`, with jitter draw `draw`, is due.
    fn due(&self, direction: Direction, read_at: Instant, draw: u32) -> Instant {
        let base = match direction {
            Direction::Forward => &self.forward_ms,
            Direction::Backward => &self.backward_ms,
        }
        .load(Ordering::Relaxed);
        let jitter = draw.min(self.jitter_ms.load(Ordering::Relaxed));
        read_at + Duration::from_millis(u64::from(base) + u64::from(jitter))
    }
}

/// Where a proxy listens and what it dials, and its bounds.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// The listen address (port 0: any free port; see [`Proxy::local_addr`]).
    pub listen: SocketAddr,
    /// Where each accepted connection is relayed to.
    pub target: SocketAddr,
    /// Bytes held per connection and direction, at most (at least 1).
    pub held_bytes_max: usize,
    /// Connections relayed at once, at most.
    pub connections_max: usize,
    /// How long dialling the target may take.
    pub connect_timeout: Duration,
    /// Seeds the jitter draws.
    pub seed: u64,
}

impl ProxyOptions {
    /// `listen` to `target` with the default bounds: 1 MiB held per connection and
    /// direction, 16 connections, a 500 ms connect timeout.
    pub fn new(listen: SocketAddr, target: SocketAddr, seed: u64) -> ProxyOptions {
        ProxyOptions {
            listen,
            target,
            held_bytes_max: 1024 * 1024,
            connections_max: 16,
            connect_timeout: Duration::from_millis(500),
            seed,
        }
    }
}

/// What a proxy observed, for tests and reports.
#[derive(Debug, Default)]
struct Stats {
    /// Connections accepted and relayed (dialled or not).
    accepted: AtomicU64,
    /// The most bytes one connection held in one direction at any time.
    held_peak: AtomicUsize,
}

/// A running proxy (see the [module documentation](self)). Dropping it stops every
/// thread and closes every connection it relays.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    thread: Option<JoinHandle<()>>,
}

/// A setup step the listening thread runs before it binds (e.g. entering a network
/// namespace); the threads it starts inherit what it did.
pub type Setup = Box<dyn FnOnce() -> Result<(), String> + Send>;

impl Proxy {
    /// Starts a proxy: a thread that runs `setup`, binds `options.listen` and relays
    /// every connection to `options.target`, delayed as `setting` says. Returns once it
    /// listens (or failed to).
    pub fn start(
        options: ProxyOptions,
        setting: Arc<Setting>,
        setup: Option<Setup>,
    ) -> Result<Proxy, ProxyError> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let (tx, rx) = mpsc::channel();
        let (thread_stop, thread_stats) = (stop.clone(), stats.clone());
        let thread = thread::Builder::new()
            .name("proxy-listen".into())
            .spawn(move || {
                if let Some(setup) = setup
                    && let Err(e) = setup()
                {
                    let _ = tx.send(Err(ProxyError::Setup(e)));
                    return;
                }
                let listener = match TcpListener::bind(options.listen)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                {
                    Ok(listener) => listener,
                    Err(source) => {
                        let _ = tx.send(Err(ProxyError::Bind {
                            addr: options.listen,
                            source,
                        }));
                        return;
                    }
                };
                let addr = listener.local_addr().unwrap_or(options.listen);
                if tx.send(Ok(addr)).is_err() {
                    return;
                }
                accept_loop(&listener, &options, &setting, &thread_stop, &thread_stats);
            })
            .map_err(ProxyError::Spawn)?;
        match rx.recv() {
            Ok(Ok(addr)) => Ok(Proxy {
                addr,
                stop,
                stats,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(ProxyError::Gone)
            }
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.stats.accepted.load(Ordering::Relaxed)
    }

    /// The most bytes one connection held in one direction at any time so far.
    pub fn held_peak(&self) -> usize {
        self.stats.held_peak.load(Ordering::Relaxed)
    }

    /// Stops every thread and closes every connection; returns once they are gone.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shut();
    }
}

fn accept_loop(
    listener: &TcpListener,
    options: &ProxyOptions,
    setting: &Arc<Setting>,
    stop: &Arc<AtomicBool>,
    stats: &Arc<Stats>,
) {
    let mut relays: Vec<JoinHandle<()>> = Vec::new();
    let mut number = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                relays.retain(|r| !r.is_finished());
                if relays.len() >= options.connections_max {
                    drop(stream);
                    continue;
                }
                stats.accepted.fetch_add(1, Ordering::Relaxed);
                number += 1;
                let relay = Relay {
                    target: options.target,
                    connect_timeout: options.connect_timeout,
                    held_bytes_max: options.held_bytes_max.max(1),
                    seed: options.seed ^ number.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    setting: setting.clone(),
                    stop: stop.clone(),
                    stats: stats.clone(),
                };
                match thread::Builder::new()
                    .name("proxy-relay".into())
                    .spawn(move || relay.run(stream))
                {
                    Ok(handle) => relays.push(handle),
                    // The stream went with the closure and is closed.
                    Err(_) => continue,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL / 4),
            Err(_) => thread::sleep(POLL / 4),
        }
    }
    for relay in relays {
        let _ = relay.join();
    }
}

/// One accepted connection: what it needs to dial and pump.
struct Relay {
    target: SocketAddr,
    connect_timeout: Duration,
    held_bytes_max: usize,
    seed: u64,
    setting: Arc<Setting>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
}

impl Relay {
    fn run(self, downstream: TcpStream) {
        let Ok(upstream) = TcpStream::connect_timeout(&self.target, self.connect_timeout) else {
            // Closing it is all the connecting side learns.
            return;
        };
        let (Ok(down_read), Ok(up_read)) = (downstream.try_clone(), upstream.try_clone()) else {
            return;
        };
        for stream in [&downstream, &upstream] {
            let _ = stream.set_nodelay(true);
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_write_timeout(Some(POLL));
        }
        let backward = {
            let pump = Pump {
                direction: Direction::Backward,
                held_bytes_max: self.held_bytes_max,
                setting: self.setting.clone(),
                stop: self.stop.clone(),
                stats: self.stats.clone(),
                rng: ChaCha8Rng::seed_from_u64(self.seed ^ 1),
            };
            let dst = downstream;
            thread::Builder::new()
                .name("proxy-back".into())
                .spawn(move || pump.run(up_read, dst))
        };
        let forward = Pump {
            direction: Direction::Forward,
            held_bytes_max: self.held_bytes_max,
            setting: self.setting,
            stop: self.stop,
            stats: self.stats,
            rng: ChaCha8Rng::seed_from_u64(self.seed),
        };
        match backward {
            Ok(backward) => {
                forward.run(down_read, upstream);
                let _ = backward.join();
            }
            Err(_) => {
                let _ = down_read.shutdown(Shutdown::Both);
                let _ = upstream.shutdown(Shutdown::Both);
            }
        }
    }
}

/// One direction of one connection: reads `src`, holds, writes `dst`.
struct Pump {
    direction: Direction,
    held_bytes_max: usize,
    setting: Arc<Setting>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    rng: ChaCha8Rng,
}

/// How a pump ended.
enum PumpEnd {
    /// The source ended its stream and everything held was written: pass the end on.
    Finished,
    /// A read or write failed, or the proxy stops: close everything.
    Broken,
}

impl Pump {
    fn run(mut self, mut src: TcpStream, mut dst: TcpStream) {
        match self.pump(&mut src, &mut dst) {
            PumpEnd::Finished => {
                let _ = dst.shutdown(Shutdown::Write);
            }
            PumpEnd::Broken => {
                // The other direction sees its sockets shut and ends too.
                let _ = src.shutdown(Shutdown::Both);
                let _ = dst.shutdown(Shutdown::Both);
            }
        }
    }

    fn pump(&mut self, src: &mut TcpStream, dst: &mut TcpStream) -> PumpEnd {
        // Held chunks, release times never decreasing along the queue.
        let mut queue: VecDeque<Held> = VecDeque::new();
        // Bytes of the front chunk already written.
        let mut written = 0usize;
        let mut held = 0usize;
        let mut ended = false;
        let mut generation = self.setting.generation.load(Ordering::Acquire);
        let mut buffer = vec![0u8; READ_CHUNK_BYTES.min(self.held_bytes_max)];
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return PumpEnd::Broken;
            }
            let now_generation = self.setting.generation.load(Ordering::Acquire);
            if now_generation != generation {
                generation = now_generation;
                let mut floor: Option<Instant> = None;
                for chunk in &mut queue {
                    let due = self.setting.due(self.direction, chunk.read_at, chunk.draw);
                    chunk.release = floor.map_or(due, |f| due.max(f));
                    floor = Some(chunk.release);
                }
            }
            // Write out what is due, as far as the destination takes it.
            let mut blocked = false;
            while let Some(chunk) = queue.front() {
                if chunk.release > Instant::now() {
                    break;
                }
                match dst.write(&chunk.bytes[written..]) {
                    Ok(0) => return PumpEnd::Broken,
                    Ok(n) => {
                        written += n;
                        if written == chunk.bytes.len() {
                            held -= chunk.bytes.len();
                            written = 0;
                            queue.pop_front();
                        }
                    }
                    Err(e) if would_block(&e) => {
                        // The write timeout (POLL) passed: look at the flag, then retry.
                        blocked = true;
                        break;
                    }
                    Err(_) => return PumpEnd::Broken,
                }
            }
            if ended && queue.is_empty() {
                return PumpEnd::Finished;
            }
            let now = Instant::now();
            let wait = match queue.front() {
                Some(chunk) if chunk.release > now => (chunk.release - now).min(POLL),
                // Due but the destination is full: the write just waited already.
                Some(_) => Duration::from_millis(1),
                None => POLL,
            }
            .max(Duration::from_millis(1));
            if ended || held >= self.held_bytes_max {
                if !blocked {
                    thread::sleep(wait);
                }
                continue;
            }
            if src.set_read_timeout(Some(wait)).is_err() {
                return PumpEnd::Broken;
            }
            let room = (self.held_bytes_max - held).min(buffer.len());
            match src.read(&mut buffer[..room]) {
                Ok(0) => ended = true,
                Ok(n) => {
                    let read_at = Instant::now();
                    let draw = self.setting.draw(&mut self.rng);
                    let due = self.setting.due(self.direction, read_at, draw);
                    let release = queue.back().map_or(due, |last| due.max(last.release));
                    queue.push_back(Held {
                        read_at,
                        draw,
                        release,
                        bytes: buffer[..n].to_vec(),
                    });
                    held += n;
                    self.stats.held_peak.fetch_max(held, Ordering::Relaxed);
                }
                Err(e) if would_block(&e) => {}
                Err(_) => return PumpEnd::Broken,
            }
        }
    }
}

/// A chunk read and not yet written.
struct Held {
    read_at: Instant,
    /// Its jitter draw, ms.
    draw: u32,
    release: Instant,
    bytes: Vec<u8>,
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A proxy on 127.0.0.1 in front of a fresh listener; returns both.
    fn proxy_to_listener(setting: &Arc<Setting>, held: usize) -> (Proxy, TcpListener) {
        let target = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut options = ProxyOptions::new(
            "127.0.0.1:0".parse().unwrap(),
            target.local_addr().unwrap(),
            7,
        );
        options.held_bytes_max = held;
        let proxy = Proxy::start(options, setting.clone(), None).unwrap();
        (proxy, target)
    }

    /// Deterministic bytes that differ along the stream (a shifted or repeated chunk
    /// shows): xorshift64*, cheap enough for tens of MiB in a debug build.
    fn pattern(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }

    fn read_to_end(mut stream: TcpStream) -> Vec<u8> {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).unwrap();
        out
    }

    // Several connections at once, each carrying a stream both ways in writes of odd
    // sizes, under a delay with jitter larger than the delay: every byte arrives, in
    // order, on the connection it was sent on, and each end of stream is passed on.
    #[test]
    fn bytes_arrive_intact_and_in_order_per_connection() {
        let setting = Arc::new(Setting::new());
        setting.set(
            Duration::from_millis(5),
            Duration::from_millis(3),
            Duration::from_millis(20),
        );
        let (proxy, target) = proxy_to_listener(&setting, 8 * 1024);
        const CONNECTIONS: u64 = 3;
        const BYTES: usize = 300_000;
        let server = thread::spawn(move || {
            let mut served = Vec::new();
            for _ in 0..CONNECTIONS {
                let (mut stream, _) = target.accept().unwrap();
                served.push(thread::spawn(move || {
                    // The client names its stream in its first 8 bytes.
                    let mut id = [0u8; 8];
                    stream.read_exact(&mut id).unwrap();
                    let id = u64::from_le_bytes(id);
                    let reader = stream.try_clone().unwrap();
                    let reading = thread::spawn(move || read_to_end(reader));
                    for piece in pattern(id + 100, BYTES).chunks(1021) {
                        stream.write_all(piece).unwrap();
                    }
                    stream.shutdown(Shutdown::Write).unwrap();
                    (id, reading.join().unwrap())
                }));
            }
            served
                .into_iter()
                .map(|s| s.join().unwrap())
                .collect::<Vec<_>>()
        });
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|id| {
                let addr = proxy.local_addr();
                thread::spawn(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    stream.write_all(&id.to_le_bytes()).unwrap();
                    let reader = stream.try_clone().unwrap();
                    let reading = thread::spawn(move || read_to_end(reader));
                    for piece in pattern(id, BYTES).chunks(777) {
                        stream.write_all(piece).unwrap();
                    }
                    stream.shutdown(Shutdown::Write).unwrap();
                    (id, reading.join().unwrap())
                })
            })
            .collect();
        for client in clients {
            let (id, received) = client.join().unwrap();
            assert!(received == pattern(id + 100, BYTES), "backward stream {id}");
        }
        let mut served = server.join().unwrap();
        served.sort_by_key(|(id, _)| *id);
        assert_eq!(served.len(), CONNECTIONS as usize);
        for (id, received) in served {
            assert!(received == pattern(id, BYTES), "forward stream {id}");
        }
        assert_eq!(proxy.accepted(), CONNECTIONS);
        assert!(proxy.held_peak() <= 8 * 1024, "{}", proxy.held_peak());
    }

    // A delay holds bytes at least that long in its direction (measured from before the
    // write to after the read, so load can only make it longer); switching it off
    // passes bytes on over the same connection, which the switch did not drop.
    #[test]
    fn delay_is_applied_and_switched_off_without_dropping_the_connection() {
        let setting = Arc::new(Setting::new());
        let forward = Duration::from_millis(150);
        let backward = Duration::from_millis(100);
        setting.set(forward, backward, Duration::ZERO);
        let (proxy, target) = proxy_to_listener(&setting, 1024);
        let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
        let (mut server, _) = target.accept().unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut byte = [0u8; 1];

        let sent = Instant::now();
        client.write_all(b"f").unwrap();
        server.read_exact(&mut byte).unwrap();
        assert!(sent.elapsed() >= forward, "{:?}", sent.elapsed());
        assert_eq!(&byte, b"f");

        let sent = Instant::now();
        server.write_all(b"b").unwrap();
        client.read_exact(&mut byte).unwrap();
        assert!(sent.elapsed() >= backward, "{:?}", sent.elapsed());
        assert_eq!(&byte, b"b");

        setting.clear();
        client.write_all(b"x").unwrap();
        server.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
        server.write_all(b"y").unwrap();
        client.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"y");
        // Switched on again, same connection.
        setting.set(forward, Duration::ZERO, Duration::ZERO);
        let sent = Instant::now();
        client.write_all(b"z").unwrap();
        server.read_exact(&mut byte).unwrap();
        assert!(sent.elapsed() >= forward, "{:?}", sent.elapsed());
        assert_eq!(&byte, b"z");
        assert_eq!(proxy.accepted(), 1);
    }

    // With the delay far longer than the test, a sender that writes as fast as it can is
    // held back: the proxy holds exactly its bound and no more, the sender's writes stop
    // being taken (backpressure), and once the delay is lifted every byte arrives in
    // order.
    #[test]
    fn held_bytes_are_bounded_and_backpressure_applies() {
        const HELD_MAX: usize = 64 * 1024;
        let setting = Arc::new(Setting::new());
        setting.set(Duration::from_secs(3600), Duration::ZERO, Duration::ZERO);
        let (proxy, target) = proxy_to_listener(&setting, HELD_MAX);
        let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
        let (server, _) = target.accept().unwrap();
        let data = pattern(5, 32 * 1024 * 1024);
        client
            .set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        // Write until a write makes no progress for 300 ms: the kernel's buffers and the
        // proxy's bound are full.
        let mut sent = 0;
        while sent < data.len() {
            match client.write(&data[sent..(sent + 65536).min(data.len())]) {
                Ok(n) => sent += n,
                Err(e) if would_block(&e) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(sent < data.len(), "32 MiB were taken: no backpressure");
        let deadline = Instant::now() + Duration::from_secs(30);
        while proxy.held_peak() < HELD_MAX && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(proxy.held_peak(), HELD_MAX);
        thread::sleep(Duration::from_millis(200));
        assert_eq!(proxy.held_peak(), HELD_MAX);

        // Lifting the delay re-times what is held: everything taken arrives, in order,
        // and the end of stream after it.
        setting.clear();
        let reading = thread::spawn(move || read_to_end(server));
        client.shutdown(Shutdown::Write).unwrap();
        let received = reading.join().unwrap();
        assert_eq!(received.len(), sent);
        assert!(received == data[..sent], "the bytes that arrived differ");
        assert_eq!(proxy.held_peak(), HELD_MAX);
    }

    // A target that refuses: the accepted connection is closed (the connecting side
    // reads the end of its stream), and the proxy goes on accepting.
    #[test]
    fn an_unreachable_target_closes_the_accepted_connection() {
        let refused = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = refused.local_addr().unwrap();
        drop(refused);
        let options = ProxyOptions::new("127.0.0.1:0".parse().unwrap(), target, 1);
        let proxy = Proxy::start(options, Arc::new(Setting::new()), None).unwrap();
        for _ in 0..2 {
            let mut stream = TcpStream::connect(proxy.local_addr()).unwrap();
            // An end of stream or a reset: either way nothing arrives and it ends.
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut buf = [0u8; 16];
            match stream.read(&mut buf) {
                Ok(n) => assert_eq!(n, 0),
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
            }
        }
        assert_eq!(proxy.accepted(), 2);
    }
}
