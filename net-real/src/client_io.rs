//! `client_io`: every client socket of the server on one thread, event-driven (mio over
//! epoll), whatever the number of connections.
//!
//! The thread owns the client listener and every accepted socket. It accepts until the
//! listener would block, reads readable sockets in turn, one read of up to 64 KiB each per
//! pass, and hands the bytes to the event loop ([`Event::ClientBytes`], one event per
//! read), and writes what the event loop asks for ([`ClientIo::write`]) straight away,
//! keeping what the socket does not take in the connection's output queue until the
//! socket is writable again. The event loop talks to it through one unbounded command
//! queue and a waker; it never blocks on a client.
//!
//! Invariants: a connection's bytes go out in the order the event loop wrote them, and a
//! close asked after writes goes out after them (one command queue); a connection id is
//! never reused; a connection being closed gets [`CLOSE_FLUSH_TIMEOUT`] to take its last
//! bytes.
//!
//! Bounds, for every connection together as well as for each:
//! - **Replies not yet taken by a socket**, counted from the moment the event loop writes
//!   them ([`QueuedReplies`] per connection, [`ClientIo::queued_reply_bytes`] for all).
//!   A connection with [`CLIENT_QUEUED_BYTES_PAUSE`] queued is not read (and the event
//!   loop hands none of its requests to the node) until its socket has taken them below
//!   that again ([`Event::ClientDrained`]): a client that does not read its replies stops
//!   being served, and its requests wait in its TCP buffer. One that still gets more
//!   (watch events, answers to writes) is disconnected beyond [`CLIENT_QUEUED_BYTES_MAX`]
//!   (and the event loop told, [`Event::ClientClosed`]). All connections together may
//!   hold [`CLIENTS_QUEUED_BYTES_MAX`]: at that total the event loop hands the node no
//!   requests but those of connections with nothing queued (one at a time), while the
//!   sockets drain; if the total stays there for [`CLIENTS_OVER_BUDGET_GRACE`] (clients
//!   that do not read), the connections holding the most are closed until it is below
//!   half the budget, as Redis's `maxmemory-clients` evicts its largest clients. A burst
//!   of large replies to clients that do read is slowed, not cut.
//! - **Bytes read and not yet given to the node** (in the event queue, or held by the
//!   event loop while it throttles): [`CLIENT_INPUT_BYTES_MAX`] in all, beyond which no
//!   socket is read until the event loop consumes them ([`ClientIo::input_done`]); the
//!   rest waits in the clients' TCP buffers.
//! - **Throttled connections**: the event loop pauses reading single connections
//!   ([`ClientIo::pause`], `globalOutstandingLimit`) and resumes them; a paused socket is
//!   not read at all, so its requests wait in its TCP buffer.
//!
//! Backpressure: when the event loop's queue is full this thread waits, and every client
//! waits with it through TCP.
//!
//! TLS (the secure client port): a connection accepted on a listener with a TLS
//! configuration runs rustls between its socket and the queues above: bytes read go
//! through the TLS session and only the plaintext they carry is handed on; replies are
//! written into the session (at most [`TLS_BUFFER_BYTES`] held there) and its records to
//! the socket. A client certificate's subject is reported once the handshake is done
//! ([`Event::ClientCertified`]), before the connection's first bytes. A handshake that
//! never ends is closed with the other connections without a session
//! (`nio.sessionlessCnxnTimeout`).

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use paddock_core::ids::ConnId;

use crate::server::Event;

/// Bytes read from a socket at once.
const READ_BYTES: usize = 64 * 1024;
/// Bytes queued for one client that has not read them: beyond this it is disconnected.
pub const CLIENT_QUEUED_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Bytes queued for one client at which it is no longer read, nor its requests handled,
/// until its socket has taken them below this again.
pub const CLIENT_QUEUED_BYTES_PAUSE: usize = 1024 * 1024;
/// Reply bytes written by the event loop and not yet taken by a socket, all connections
/// together: at this total no new request is handed to the node; held there for
/// [`CLIENTS_OVER_BUDGET_GRACE`], the connections holding the most are closed.
pub const CLIENTS_QUEUED_BYTES_MAX: usize = 64 * 1024 * 1024;
/// How long the unsent replies may stay at [`CLIENTS_QUEUED_BYTES_MAX`] or above before
/// the connections holding the most are closed (until below half of it).
pub const CLIENTS_OVER_BUDGET_GRACE: Duration = Duration::from_secs(1);
/// Client bytes read and not yet handed to the node, all connections together: at this
/// total no socket is read until the event loop consumes some.
pub const CLIENT_INPUT_BYTES_MAX: usize = 8 * 1024 * 1024;
/// How long a connection being closed may take to read its last bytes.
pub const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// After a pass that handed the event loop this many reads or fewer, the thread spins
/// for the answers ([`IoThread::spin_for_replies`]) rather than sleeping at once.
const SPIN_AFTER_READS_MAX: usize = 2;
/// The longest such spin.
const SPIN_WAIT: Duration = Duration::from_micros(50);
/// Longest wait in `poll`, so the thread sees a stop request and close deadlines.
const POLL_WAIT: Duration = Duration::from_millis(50);
/// After an accept failure other than "would block" (e.g. no file descriptor left), how
/// long to wait before accepting again; the server keeps serving its connections.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

const WAKER: Token = Token(usize::MAX - 2);
/// The token of listener `i` is `LISTENER_TOKEN_TOP - i`.
const LISTENER_TOKEN_TOP: usize = usize::MAX - 3;
/// Plaintext and TLS records a TLS session may hold for its socket.
pub const TLS_BUFFER_BYTES: usize = 64 * 1024;

/// A socket the client thread accepts on, with the TLS configuration of the secure
/// client port (`None` for the plaintext one).
#[derive(Debug)]
pub struct ClientListener {
    /// The bound listener.
    pub listener: std::net::TcpListener,
    /// TLS for every connection accepted on it.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Reply bytes written for one connection and not yet taken by its socket (or discarded
/// with it): the event loop adds when it writes, the client thread subtracts.
#[derive(Debug, Clone, Default)]
pub struct QueuedReplies(Arc<AtomicUsize>);

impl QueuedReplies {
    /// The bytes queued now.
    pub fn bytes(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// What the event loop asks of the client thread.
#[derive(Debug)]
enum Command {
    /// Send these bytes on the connection (counted in its queue).
    Write(ConnId, Vec<u8>, QueuedReplies),
    /// Send what is queued, then close the connection.
    Close(ConnId),
    /// Stop reading the connection (its requests wait in its TCP buffer).
    Pause(ConnId),
    /// Read the connection again.
    Resume(ConnId),
}

/// Counts both threads keep: the bounds above are checked against them.
#[derive(Debug, Default)]
struct Shared {
    /// Reply bytes passed to [`ClientIo::write`] and not yet taken by a socket or
    /// discarded with their connection.
    reply_bytes: AtomicUsize,
    /// Client bytes read and not yet reported consumed with [`ClientIo::input_done`].
    input_bytes: AtomicUsize,
    /// Connections closed for the replies they did not read.
    slow_closed: AtomicU64,
}

/// The event loop's handle on the client thread.
#[derive(Debug)]
pub struct ClientIo {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    /// Set once a wake is pending, so a burst of commands costs one wake-up.
    wake_pending: Arc<AtomicBool>,
    /// Commands were sent since the last [`ClientIo::flush`]: the thread is woken there,
    /// once for all of them, not at every reply (each wake-up could preempt the event
    /// loop in the middle of its work on a machine with few cores).
    wake_deferred: Cell<bool>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl ClientIo {
    /// Starts the client thread on `listeners`; accepted connections, their bytes and
    /// their ends are reported on `events`. The thread ends once `stop` is set.
    pub fn start(
        listeners: Vec<ClientListener>,
        events: SyncSender<Event>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<ClientIo> {
        let poll = Poll::new()?;
        let mut registered = Vec::with_capacity(listeners.len());
        for (i, ClientListener { listener, tls }) in listeners.into_iter().enumerate() {
            listener.set_nonblocking(true)?;
            let mut listener = TcpListener::from_std(listener);
            poll.registry().register(
                &mut listener,
                Token(LISTENER_TOKEN_TOP - i),
                Interest::READABLE,
            )?;
            registered.push((listener, tls));
        }
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (commands, command_rx) = channel();
        let wake_pending = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::default());
        let mut io_thread = IoThread {
            poll,
            listeners: registered,
            conns: BTreeMap::new(),
            next_conn: 1,
            events,
            commands: command_rx,
            wake_pending: wake_pending.clone(),
            shared: shared.clone(),
            stop,
            accept_paused_until: None,
            closing: BTreeMap::new(),
            readable: VecDeque::new(),
            over_budget_since: None,
            read_buf: vec![0; READ_BYTES],
            written: Vec::new(),
        };
        let thread = thread::Builder::new()
            .name("paddock-clients".into())
            .spawn(move || io_thread.run())?;
        Ok(ClientIo {
            commands,
            waker,
            wake_pending,
            wake_deferred: Cell::new(false),
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `bytes` for `conn` (dropped if the connection is gone). They count in
    /// `queued` (the connection's, from [`Event::Accepted`]) and in
    /// [`ClientIo::queued_reply_bytes`] from now until its socket takes them.
    pub fn write(&self, conn: ConnId, queued: &QueuedReplies, bytes: Vec<u8>) {
        let len = bytes.len();
        queued.0.fetch_add(len, Ordering::AcqRel);
        self.shared.reply_bytes.fetch_add(len, Ordering::AcqRel);
        if !self.send(Command::Write(conn, bytes, queued.clone())) {
            queued.0.fetch_sub(len, Ordering::AcqRel);
            self.shared.reply_bytes.fetch_sub(len, Ordering::AcqRel);
        }
    }

    /// Closes `conn` once what is queued for it is sent.
    pub fn close(&self, conn: ConnId) {
        self.send(Command::Close(conn));
    }

    /// Stops reading `conn` until [`ClientIo::resume`]; what it sends waits in its TCP
    /// buffer.
    pub fn pause(&self, conn: ConnId) {
        self.send(Command::Pause(conn));
    }

    /// Reads `conn` again after [`ClientIo::pause`].
    pub fn resume(&self, conn: ConnId) {
        self.send(Command::Resume(conn));
    }

    /// Reply bytes written and not yet taken by a socket (or discarded), all connections
    /// together.
    pub fn queued_reply_bytes(&self) -> usize {
        self.shared.reply_bytes.load(Ordering::Acquire)
    }

    /// Client bytes read and not yet consumed, all connections together.
    pub fn input_bytes(&self) -> usize {
        self.shared.input_bytes.load(Ordering::Acquire)
    }

    /// Connections closed so far because they did not read their replies (one beyond
    /// [`CLIENT_QUEUED_BYTES_MAX`], or among the largest while every connection together
    /// held [`CLIENTS_QUEUED_BYTES_MAX`]).
    pub fn slow_clients_closed(&self) -> u64 {
        self.shared.slow_closed.load(Ordering::Relaxed)
    }

    /// The event loop is done with `bytes` bytes of [`Event::ClientBytes`] (handed to the
    /// node or discarded): they no longer count against [`CLIENT_INPUT_BYTES_MAX`]. Every
    /// byte reported read must be reported here exactly once.
    pub fn input_done(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let before = self.shared.input_bytes.fetch_sub(bytes, Ordering::AcqRel);
        debug_assert!(before >= bytes, "input bytes consumed twice");
        if before >= CLIENT_INPUT_BYTES_MAX && before - bytes < CLIENT_INPUT_BYTES_MAX {
            self.wake();
        }
    }

    /// Sends a command, for the thread to run once woken by [`ClientIo::flush`]; false
    /// once the thread is gone.
    fn send(&self, command: Command) -> bool {
        let sent = self.commands.send(command).is_ok();
        if sent {
            self.wake_deferred.set(true);
        }
        sent
    }

    /// Wakes the thread for the commands sent since the last call, if any. The event
    /// loop calls it at the end of every round, and within a long round every
    /// millisecond or so.
    pub fn flush(&self) {
        if self.wake_deferred.replace(false) {
            self.wake();
        }
    }

    fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel)
            && let Err(error) = self.waker.wake()
        {
            tracing::error!(%error, "cannot wake the client thread");
        }
    }

    /// Ends the client thread once it has run every command sent so far (closing every
    /// socket still open), and waits for it.
    pub fn stop(self) {
        let ClientIo {
            commands,
            waker,
            thread,
            ..
        } = self;
        drop(commands);
        let _ = waker.wake();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// One open connection, as the client thread sees it.
struct Conn {
    stream: TcpStream,
    /// The TLS session of a connection to the secure client port.
    tls: Option<Box<rustls::ServerConnection>>,
    /// Bytes waiting for the socket, oldest first; the first may be partly sent.
    out: VecDeque<Vec<u8>>,
    /// Bytes of `out[0]` already sent.
    out_offset: usize,
    out_bytes: usize,
    /// Set when the event loop asked to close: no more reads, and the deadline to flush.
    closing: Option<Instant>,
    /// Whether the socket is registered for writability too.
    wants_write: bool,
    /// Paused by the event loop: not read until resumed.
    paused: bool,
    /// Its unsent replies, as the event loop counts them too.
    queued: QueuedReplies,
    /// In `IoThread::readable`: it may have bytes to read.
    readable: bool,
    /// In `IoThread::written`: replies were queued since its last write.
    written: bool,
}

/// How a flush ended.
enum Flushed {
    /// Everything queued went out.
    All,
    /// The socket is full; the rest waits for writability.
    Partly,
    /// The socket failed.
    Failed,
}

struct IoThread {
    poll: Poll,
    listeners: Vec<(TcpListener, Option<Arc<rustls::ServerConfig>>)>,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    events: SyncSender<Event>,
    commands: Receiver<Command>,
    wake_pending: Arc<AtomicBool>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    accept_paused_until: Option<Instant>,
    /// Connections being closed, by deadline: the only ones `close_overdue` looks at.
    closing: BTreeMap<ConnId, Instant>,
    /// Connections that may have bytes to read, in turn: each gets one read per pass, so
    /// a client that sends without pause cannot starve the others (mio reports a socket
    /// readable once, so one left unread waits here, not in `poll`).
    readable: VecDeque<ConnId>,
    /// Since when the unsent replies have been at [`CLIENTS_QUEUED_BYTES_MAX`] or above.
    over_budget_since: Option<Instant>,
    read_buf: Vec<u8>,
    /// Connections given replies by the commands being run, to write once they all are.
    written: Vec<ConnId>,
}

impl IoThread {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        while !self.stop.load(Ordering::Relaxed) {
            let wait = if !self.readable.is_empty() && self.input_open() {
                Duration::ZERO
            } else {
                POLL_WAIT
            };
            if let Err(error) = self.poll.poll(&mut events, Some(wait)) {
                if error.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(%error, "client poll failed");
                    thread::sleep(POLL_WAIT);
                }
                continue;
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    Token(n)
                        if n <= LISTENER_TOKEN_TOP
                            && LISTENER_TOKEN_TOP - n < self.listeners.len() =>
                    {
                        self.accept_all(LISTENER_TOKEN_TOP - n);
                    }
                    Token(n) => {
                        let conn = ConnId(n as u64);
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.mark_readable(conn);
                        }
                        if event.is_writable() {
                            self.flush(conn);
                        }
                    }
                }
            }
            if !self.commands_run() {
                break;
            }
            let delivered = self.read_pass();
            if (1..=SPIN_AFTER_READS_MAX).contains(&delivered) && self.readable.is_empty() {
                self.spin_for_replies();
            }
            if self
                .accept_paused_until
                .is_some_and(|until| Instant::now() >= until)
            {
                self.accept_paused_until = None;
                for i in 0..self.listeners.len() {
                    self.accept_all(i);
                }
            }
            self.close_overdue();
            self.enforce_reply_budget();
        }
        for (_, conn) in std::mem::take(&mut self.conns) {
            let _ = conn.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Accepts on listener `i` until it would block. On another failure (out of
    /// descriptors), stops accepting for [`ACCEPT_RETRY`]: existing connections carry on.
    fn accept_all(&mut self, i: usize) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some((listener, tls)) = self.listeners.get(i) else {
                return;
            };
            match listener.accept() {
                Ok((stream, addr)) => {
                    let tls = tls.clone();
                    self.accepted(stream, addr, tls);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    tracing::warn!(%error, "accept failed; new connections wait");
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    fn accepted(
        &mut self,
        mut stream: TcpStream,
        addr: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) {
        let tls = match tls.map(rustls::ServerConnection::new).transpose() {
            Ok(tls) => tls.map(|mut session| {
                session.set_buffer_limit(Some(TLS_BUFFER_BYTES));
                Box::new(session)
            }),
            Err(error) => {
                tracing::warn!(%addr, %error, "TLS connection dropped at accept");
                return;
            }
        };
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let _ = stream.set_nodelay(true);
        let token = Token(conn.0 as usize);
        let queued = QueuedReplies::default();
        if let Err(error) = self
            .poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)
        {
            tracing::warn!(%addr, %error, "connection dropped at accept");
            return;
        }
        self.conns.insert(
            conn,
            Conn {
                stream,
                tls,
                out: VecDeque::new(),
                out_offset: 0,
                out_bytes: 0,
                closing: None,
                wants_write: false,
                paused: false,
                queued: queued.clone(),
                readable: false,
                written: false,
            },
        );
        self.report(Event::Accepted(conn, addr, queued));
    }

    /// Hands an event to the event loop, waiting while its queue is full.
    fn report(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// True while the bytes read and not yet consumed are below [`CLIENT_INPUT_BYTES_MAX`].
    fn input_open(&self) -> bool {
        self.shared.input_bytes.load(Ordering::Acquire) < CLIENT_INPUT_BYTES_MAX
    }

    /// Notes that `conn` may have bytes to read (once in the queue).
    fn mark_readable(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.readable
        {
            c.readable = true;
            self.readable.push_back(conn);
        }
    }

    /// One read of each connection that may have bytes, in turn, while the input bound
    /// allows; one that gave bytes goes to the back of the queue for another read.
    /// Paused and closing connections, and those with [`CLIENT_QUEUED_BYTES_PAUSE`] of
    /// replies queued, leave the queue (a resume, or their replies going out, puts them
    /// back).
    fn read_pass(&mut self) -> usize {
        let mut delivered = 0;
        for _ in 0..self.readable.len() {
            if !self.input_open() {
                return delivered;
            }
            let Some(conn) = self.readable.pop_front() else {
                return delivered;
            };
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            c.readable = false;
            if c.paused || c.closing.is_some() || c.queued.bytes() >= CLIENT_QUEUED_BYTES_PAUSE {
                continue;
            }
            if c.tls.is_some() {
                delivered += usize::from(self.tls_read(conn));
                continue;
            }
            let result = loop {
                match c.stream.read(&mut self.read_buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    result => break result,
                }
            };
            match result {
                Ok(0) => {
                    self.drop_conn(conn);
                    self.report(Event::ClientEof(conn));
                }
                Ok(n) => {
                    let bytes = self
                        .read_buf
                        .get(..n)
                        .map(<[u8]>::to_vec)
                        .unwrap_or_default();
                    self.shared.input_bytes.fetch_add(n, Ordering::AcqRel);
                    self.report(Event::ClientBytes(conn, bytes));
                    self.mark_readable(conn);
                    delivered += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => self.ended(conn),
            }
        }
        delivered
    }

    /// One read of a TLS connection: the records the socket has, then every byte of
    /// plaintext they carried, handed on as one read would be (after the certificate's
    /// subject, the first time). The session's own answers (handshake, alerts) go out at
    /// once. True when plaintext was handed on.
    fn tls_read(&mut self, conn: ConnId) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        let Some(tls) = c.tls.as_mut() else {
            return false;
        };
        let was_handshaking = tls.is_handshaking();
        let got = loop {
            match tls.read_tls(&mut c.stream) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                result => break result,
            }
        };
        let mut eof = match got {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => {
                self.ended(conn);
                return false;
            }
        };
        if let Err(error) = tls.process_new_packets() {
            let peer = c.stream.peer_addr().ok();
            tracing::debug!(?peer, %error, "TLS client refused");
            // The alert rustls queued for the client, if the socket takes it.
            let _ = tls.write_tls(&mut c.stream);
            self.ended(conn);
            return false;
        }
        let mut plain = Vec::new();
        loop {
            match tls.reader().read(&mut self.read_buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => plain.extend_from_slice(self.read_buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        let subject = (was_handshaking && !tls.is_handshaking())
            .then(|| tls.peer_certificates().and_then(|certs| certs.first()))
            .flatten()
            .and_then(|cert| crate::tls::certificate_subject(cert));
        if let Some(subject) = subject {
            self.report(Event::ClientCertified(conn, subject));
        }
        let delivered = !plain.is_empty();
        if delivered {
            self.shared
                .input_bytes
                .fetch_add(plain.len(), Ordering::AcqRel);
            self.report(Event::ClientBytes(conn, plain));
        }
        if eof {
            self.drop_conn(conn);
            self.report(Event::ClientEof(conn));
            return delivered;
        }
        self.mark_readable(conn);
        // Handshake messages and alerts the session wants sent.
        self.flush(conn);
        delivered
    }

    /// Waits a few microseconds, spinning, for the event loop's answer to what was just
    /// handed to it, instead of sleeping in `poll` and being woken: with few clients
    /// talking, a read is usually answered within [`SPIN_WAIT`], and a sleep and wake-up
    /// would add tens of microseconds to its latency. Under load the pass delivers many
    /// reads and this does not run.
    fn spin_for_replies(&self) {
        let started = Instant::now();
        while !self.wake_pending.load(Ordering::Acquire) && started.elapsed() < SPIN_WAIT {
            std::hint::spin_loop();
        }
    }

    /// The connection failed or is dropped here: forget it and tell the event loop.
    fn ended(&mut self, conn: ConnId) {
        self.drop_conn(conn);
        self.report(Event::ClientClosed(conn));
    }

    /// Runs every queued command, then writes each connection that got replies once:
    /// the replies a round of the event loop produced for one client leave in one
    /// vectored write, not one system call each. False once the event loop is gone.
    fn commands_run(&mut self) -> bool {
        let running = self.commands_drain();
        for conn in std::mem::take(&mut self.written) {
            self.flush(conn);
        }
        running
    }

    fn commands_drain(&mut self) -> bool {
        self.wake_pending.store(false, Ordering::Release);
        loop {
            match self.commands.try_recv() {
                Ok(Command::Write(conn, bytes, queued)) => self.queue(conn, bytes, &queued),
                Ok(Command::Close(conn)) => self.close(conn),
                Ok(Command::Pause(conn)) => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.paused = true;
                    }
                }
                Ok(Command::Resume(conn)) => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.paused = false;
                    }
                    // It may have become readable while paused; mio will not say again.
                    self.mark_readable(conn);
                }
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn queue(&mut self, conn: ConnId, bytes: Vec<u8>, queued: &QueuedReplies) {
        let Some(c) = self.conns.get_mut(&conn) else {
            self.taken(conn, queued, bytes.len());
            return;
        };
        if c.closing.is_some() || bytes.is_empty() {
            self.taken(conn, queued, bytes.len());
            return;
        }
        c.out_bytes += bytes.len();
        c.out.push_back(bytes);
        if c.out_bytes > CLIENT_QUEUED_BYTES_MAX {
            let peer = c.stream.peer_addr().ok();
            tracing::warn!(
                ?peer,
                queued_bytes = c.out_bytes,
                "client too slow to read its replies; closing"
            );
            self.shared.slow_closed.fetch_add(1, Ordering::Relaxed);
            self.ended(conn);
            return;
        }
        if !c.written {
            c.written = true;
            self.written.push(conn);
        }
    }

    /// Reply bytes of `conn` sent or discarded: they leave the counts. When its queue falls
    /// below [`CLIENT_QUEUED_BYTES_PAUSE`] the connection is read again and the event loop
    /// told ([`Event::ClientDrained`]).
    fn taken(&mut self, conn: ConnId, queued: &QueuedReplies, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.shared.reply_bytes.fetch_sub(bytes, Ordering::AcqRel);
        let before = queued.0.fetch_sub(bytes, Ordering::AcqRel);
        if before >= CLIENT_QUEUED_BYTES_PAUSE && before - bytes < CLIENT_QUEUED_BYTES_PAUSE {
            self.mark_readable(conn);
            self.report(Event::ClientDrained(conn));
        }
    }

    /// Enforces [`CLIENTS_QUEUED_BYTES_MAX`]: once the unsent replies of all connections
    /// have stayed at it or above for [`CLIENTS_OVER_BUDGET_GRACE`], closes the
    /// connections holding the most until the total is below half of it.
    fn enforce_reply_budget(&mut self) {
        if self.shared.reply_bytes.load(Ordering::Acquire) < CLIENTS_QUEUED_BYTES_MAX {
            self.over_budget_since = None;
            return;
        }
        let now = Instant::now();
        let since = *self.over_budget_since.get_or_insert(now);
        if now.duration_since(since) < CLIENTS_OVER_BUDGET_GRACE {
            return;
        }
        self.over_budget_since = None;
        let mut largest: Vec<(usize, ConnId)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.out_bytes > 0)
            .map(|(id, c)| (c.out_bytes, *id))
            .collect();
        largest.sort_unstable_by(|a, b| b.cmp(a));
        for (queued_bytes, conn) in largest {
            if self.shared.reply_bytes.load(Ordering::Acquire) < CLIENTS_QUEUED_BYTES_MAX / 2 {
                break;
            }
            let Some(c) = self.conns.get(&conn) else {
                continue;
            };
            let closing = c.closing.is_some();
            let peer = c.stream.peer_addr().ok();
            tracing::warn!(
                ?peer,
                queued_bytes,
                all_clients_queued_bytes = self.shared.reply_bytes.load(Ordering::Relaxed),
                "unsent replies of all clients over budget; closing one of the clients holding the most"
            );
            self.shared.slow_closed.fetch_add(1, Ordering::Relaxed);
            self.drop_conn(conn);
            if !closing {
                self.report(Event::ClientClosed(conn));
            }
        }
    }

    fn close(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let deadline = Instant::now() + CLOSE_FLUSH_TIMEOUT;
        c.closing = Some(deadline);
        self.closing.insert(conn, deadline);
        self.flush(conn);
    }

    /// Writes what `conn` has queued until the socket would block; then waits for
    /// writability, closes a connection whose close was asked and whose queue is empty,
    /// or drops a failed one (reporting its end unless the event loop closed it).
    fn flush(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.written = false;
        let before = c.out_bytes;
        let flushed = flush_queue(c);
        let (sent, queued, closing) = (before - c.out_bytes, c.queued.clone(), c.closing);
        self.taken(conn, &queued, sent);
        match flushed {
            Flushed::All if closing.is_some() => self.drop_conn(conn),
            Flushed::All => self.set_write_interest(conn, false),
            Flushed::Partly => self.set_write_interest(conn, true),
            Flushed::Failed => {
                self.drop_conn(conn);
                if closing.is_none() {
                    self.report(Event::ClientClosed(conn));
                }
            }
        }
    }

    fn set_write_interest(&mut self, conn: ConnId, wanted: bool) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.wants_write == wanted {
            return;
        }
        c.wants_write = wanted;
        let interest = if wanted {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let token = Token(conn.0 as usize);
        if self
            .poll
            .registry()
            .reregister(&mut c.stream, token, interest)
            .is_err()
        {
            let closing = c.closing.is_some();
            self.drop_conn(conn);
            if !closing {
                self.report(Event::ClientClosed(conn));
            }
        }
    }

    /// Drops connections whose close has waited longer than [`CLOSE_FLUSH_TIMEOUT`].
    fn close_overdue(&mut self) {
        if self.closing.is_empty() {
            return;
        }
        let now = Instant::now();
        let overdue: Vec<ConnId> = self
            .closing
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for conn in overdue {
            self.drop_conn(conn);
        }
    }

    /// Forgets a connection and closes its socket; its unsent replies leave the count.
    fn drop_conn(&mut self, conn: ConnId) {
        self.closing.remove(&conn);
        if let Some(mut c) = self.conns.remove(&conn) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
            self.taken(conn, &c.queued, c.out_bytes);
        }
    }
}

/// Most queued replies handed to one vectored write.
const WRITE_SLICES_MAX: usize = 64;

/// Writes `c`'s queue until it is empty or the socket would block, many replies per
/// system call (a vectored write).
fn flush_queue(c: &mut Conn) -> Flushed {
    if c.tls.is_some() {
        return flush_tls(c);
    }
    while !c.out.is_empty() {
        let mut slices = [IoSlice::new(&[]); WRITE_SLICES_MAX];
        let mut count = 0;
        for (i, buf) in c.out.iter().take(WRITE_SLICES_MAX).enumerate() {
            let from = if i == 0 { c.out_offset } else { 0 };
            if let Some(slice) = slices.get_mut(i) {
                *slice = IoSlice::new(buf.get(from..).unwrap_or_default());
                count = i + 1;
            }
        }
        match c
            .stream
            .write_vectored(slices.get(..count).unwrap_or_default())
        {
            Ok(0) => return Flushed::Failed,
            Ok(mut written) => {
                c.out_bytes = c.out_bytes.saturating_sub(written);
                while written > 0 {
                    let Some(front) = c.out.front() else {
                        break;
                    };
                    let left = front.len().saturating_sub(c.out_offset);
                    if written >= left {
                        written -= left;
                        c.out.pop_front();
                        c.out_offset = 0;
                    } else {
                        c.out_offset += written;
                        written = 0;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flushed::Partly,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Flushed::Failed,
        }
    }
    Flushed::All
}

/// [`flush_queue`] through a TLS session: queued replies into the session while it takes
/// them, its records to the socket, until both are empty or the socket would block.
fn flush_tls(c: &mut Conn) -> Flushed {
    let Some(tls) = c.tls.as_mut() else {
        return Flushed::Failed;
    };
    loop {
        while let Some(front) = c.out.front() {
            let pending = front.get(c.out_offset..).unwrap_or_default();
            match tls.writer().write(pending) {
                Ok(0) => break,
                Ok(n) => {
                    c.out_bytes = c.out_bytes.saturating_sub(n);
                    if n >= pending.len() {
                        c.out.pop_front();
                        c.out_offset = 0;
                    } else {
                        c.out_offset += n;
                    }
                }
                Err(_) => return Flushed::Failed,
            }
        }
        if !tls.wants_write() {
            // With replies left the session is full of plaintext it cannot send yet (its
            // handshake is not done): the next read's flush goes on.
            return if c.out.is_empty() {
                Flushed::All
            } else {
                Flushed::Partly
            };
        }
        match tls.write_tls(&mut c.stream) {
            Ok(0) => return Flushed::Failed,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flushed::Partly,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Flushed::Failed,
        }
    }
}
