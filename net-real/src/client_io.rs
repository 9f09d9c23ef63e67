//! `client_io`: every client socket of the server on one thread, event-driven (mio over
//! epoll), whatever the number of connections.
//!
//! The thread owns the client listener and every accepted socket. It accepts until the
//! listener would block, reads each readable socket until it would block and hands the
//! bytes to the event loop ([`Event::ClientBytes`], one event per read), and writes what
//! the event loop asks for ([`ClientIo::write`]) straight away, keeping what the socket
//! does not take in the connection's output queue until the socket is writable again.
//! The event loop talks to it through one unbounded command queue and a waker; it never
//! blocks on a client.
//!
//! Invariants: a connection's bytes go out in the order the event loop wrote them, and a
//! close asked after writes goes out after them (one command queue); a connection id is
//! never reused; a connection's output queue never holds more than
//! [`CLIENT_QUEUED_BYTES_MAX`]: a client that does not read its replies is disconnected
//! (and the event loop told, [`Event::ClientClosed`]) rather than buffered without end; a
//! connection being closed gets [`CLOSE_FLUSH_TIMEOUT`] to take its last bytes.
//! Backpressure: when the event loop's queue is full this thread waits, and every client
//! waits with it through TCP.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
/// How long a connection being closed may take to read its last bytes.
pub const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait in `poll`, so the thread sees a stop request and close deadlines.
const POLL_WAIT: Duration = Duration::from_millis(50);
/// After an accept failure other than "would block" (e.g. no file descriptor left), how
/// long to wait before accepting again; the server keeps serving its connections.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);

/// What the event loop asks of the client thread.
#[derive(Debug)]
enum Command {
    /// Send these bytes on the connection.
    Write(ConnId, Vec<u8>),
    /// Send what is queued, then close the connection.
    Close(ConnId),
}

/// The event loop's handle on the client thread.
#[derive(Debug)]
pub struct ClientIo {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    /// Set once a wake is pending, so a burst of commands costs one wake-up.
    wake_pending: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ClientIo {
    /// Starts the client thread on `listener`; accepted connections, their bytes and
    /// their ends are reported on `events`. The thread ends once `stop` is set.
    pub fn start(
        listener: std::net::TcpListener,
        events: SyncSender<Event>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<ClientIo> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (commands, command_rx) = channel();
        let wake_pending = Arc::new(AtomicBool::new(false));
        let mut io_thread = IoThread {
            poll,
            listener,
            conns: BTreeMap::new(),
            next_conn: 1,
            events,
            commands: command_rx,
            wake_pending: wake_pending.clone(),
            stop,
            accept_paused_until: None,
            closing: BTreeMap::new(),
            read_buf: vec![0; READ_BYTES],
        };
        let thread = thread::Builder::new()
            .name("paddock-clients".into())
            .spawn(move || io_thread.run())?;
        Ok(ClientIo {
            commands,
            waker,
            wake_pending,
            thread: Some(thread),
        })
    }

    /// Queues `bytes` for `conn` (dropped if the connection is gone).
    pub fn write(&self, conn: ConnId, bytes: Vec<u8>) {
        self.send(Command::Write(conn, bytes));
    }

    /// Closes `conn` once what is queued for it is sent.
    pub fn close(&self, conn: ConnId) {
        self.send(Command::Close(conn));
    }

    fn send(&self, command: Command) {
        if self.commands.send(command).is_ok()
            && !self.wake_pending.swap(true, Ordering::AcqRel)
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
    /// Bytes waiting for the socket, oldest first; the first may be partly sent.
    out: VecDeque<Vec<u8>>,
    /// Bytes of `out[0]` already sent.
    out_offset: usize,
    out_bytes: usize,
    /// Set when the event loop asked to close: no more reads, and the deadline to flush.
    closing: Option<Instant>,
    /// Whether the socket is registered for writability too.
    wants_write: bool,
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
    listener: TcpListener,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    events: SyncSender<Event>,
    commands: Receiver<Command>,
    wake_pending: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    accept_paused_until: Option<Instant>,
    /// Connections being closed, by deadline: the only ones `close_overdue` looks at.
    closing: BTreeMap<ConnId, Instant>,
    read_buf: Vec<u8>,
}

impl IoThread {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        while !self.stop.load(Ordering::Relaxed) {
            if let Err(error) = self.poll.poll(&mut events, Some(POLL_WAIT)) {
                if error.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(%error, "client poll failed");
                    thread::sleep(POLL_WAIT);
                }
                continue;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    Token(n) => {
                        let conn = ConnId(n as u64);
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read_all(conn);
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
            if self
                .accept_paused_until
                .is_some_and(|until| Instant::now() >= until)
            {
                self.accept_paused_until = None;
                self.accept_all();
            }
            self.close_overdue();
        }
        for (_, conn) in std::mem::take(&mut self.conns) {
            let _ = conn.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Accepts until the listener would block. On another failure (out of descriptors),
    /// stops accepting for [`ACCEPT_RETRY`]: existing connections carry on.
    fn accept_all(&mut self) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => self.accepted(stream, addr),
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

    fn accepted(&mut self, mut stream: TcpStream, addr: SocketAddr) {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let _ = stream.set_nodelay(true);
        let token = Token(conn.0 as usize);
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
                out: VecDeque::new(),
                out_offset: 0,
                out_bytes: 0,
                closing: None,
                wants_write: false,
            },
        );
        self.report(Event::Accepted(conn, addr));
    }

    /// Hands an event to the event loop, waiting while its queue is full.
    fn report(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Reads `conn` until it would block; reports the bytes, and the end of the stream.
    fn read_all(&mut self, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.closing.is_some() {
                return;
            }
            match c.stream.read(&mut self.read_buf) {
                Ok(0) => break,
                Ok(n) => {
                    let bytes = self
                        .read_buf
                        .get(..n)
                        .map(<[u8]>::to_vec)
                        .unwrap_or_default();
                    self.report(Event::ClientBytes(conn, bytes));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.drop_conn(conn);
        self.report(Event::ClientClosed(conn));
    }

    /// Runs every queued command. False once the event loop is gone.
    fn commands_run(&mut self) -> bool {
        self.wake_pending.store(false, Ordering::Release);
        loop {
            match self.commands.try_recv() {
                Ok(Command::Write(conn, bytes)) => self.queue(conn, bytes),
                Ok(Command::Close(conn)) => self.close(conn),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn queue(&mut self, conn: ConnId, bytes: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing.is_some() || bytes.is_empty() {
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
            self.drop_conn(conn);
            self.report(Event::ClientClosed(conn));
            return;
        }
        self.flush(conn);
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
        let flushed = flush_queue(c);
        match flushed {
            Flushed::All if c.closing.is_some() => self.drop_conn(conn),
            Flushed::All => self.set_write_interest(conn, false),
            Flushed::Partly => self.set_write_interest(conn, true),
            Flushed::Failed => {
                let closing = c.closing.is_some();
                self.drop_conn(conn);
                if !closing {
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

    fn drop_conn(&mut self, conn: ConnId) {
        self.closing.remove(&conn);
        if let Some(mut c) = self.conns.remove(&conn) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Most queued replies handed to one vectored write.
const WRITE_SLICES_MAX: usize = 64;

/// Writes `c`'s queue until it is empty or the socket would block, many replies per
/// system call (a vectored write).
fn flush_queue(c: &mut Conn) -> Flushed {
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
