//! `peer`: the replication links between servers, over TCP on the peer port.
//!
//! Each server dials every other one and uses that outbound connection only to send;
//! what arrives on the connections others dialled is only read. A connection starts with
//! a handshake, `[magic "PDKPEER1"][u32 protocol version][u64 sender id]`, then carries
//! frames `[u32 length][PeerMessage in bincode]`, each at most the frame limit given to
//! [`Peers::start`] (`paddock.peerMessageBytesMax` and a fixed overhead: snapshots travel
//! in pieces, so no message needs more). A longer frame, a message that does not decode,
//! a wrong version or an unknown sender closes that connection with a log line; nothing a
//! peer sends can panic the server.
//!
//! With quorum TLS ([`QuorumTls`], `sslQuorum=true`) every connection is TLS first, both
//! sides presenting certificates the trust store accepts, and nothing is read past the
//! TLS handshake but from a server whose certificate is valid for the host of the
//! `server.N` line whose id it claims (see [`crate::tls`]). Without it, anyone who can reach
//! the port and claims a configured id is taken for that member, unless quorum SASL
//! authenticates the members ([`QuorumSasl`], `quorum.auth.enableSasl=true`): then a
//! connecting member announces it in its hello (magic `PDKSASL1`) and proves it holds the
//! credentials before anything more it sends is read (see [`crate::peer_auth`]); with
//! `quorum.auth.serverRequireSasl=true` a member that does not is refused. With neither,
//! the port must be reachable only from the members (the server warns at start-up).
//!
//! Loss is fine (replication retransmits), so sending never blocks the event loop: each
//! link has a bounded queue and a message that does not fit is dropped. A link that
//! fails reconnects with exponential backoff, from [`RECONNECT_DELAY_MIN`] up to
//! [`RECONNECT_DELAY_MAX`].

use std::collections::BTreeMap;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use paddock_core::ids::NodeId;
use paddock_core::node::PeerMessage;

use crate::peer_auth::{self, QuorumSasl, SASL_MAGIC};
use crate::tls::{PeerStream, QuorumTls};

/// The first bytes of every peer connection.
pub const PEER_MAGIC: [u8; 8] = *b"PDKPEER1";
/// The peer protocol version this build speaks; a peer with another is refused. 2:
/// snapshots in pieces (`Snapshot` carries an offset and the file's length,
/// `SnapshotReply` and `AppendReply(Missing)` are new).
pub const PEER_PROTOCOL_VERSION: u32 = 2;
/// Bytes of the handshake: magic, version, sender id.
pub const PEER_HANDSHAKE_BYTES: usize = 8 + 4 + 8;
/// How much a frame's buffer grows at a time while its bytes arrive: a frame's buffer
/// grows with the bytes that arrive, never with the length it claims.
pub const PEER_READ_CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Messages queued per link while it is busy or down, in messages.
pub const PEER_QUEUE_MESSAGES_MAX: usize = 4096;
/// First reconnect delay.
pub const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(20);
/// Longest reconnect delay.
pub const RECONNECT_DELAY_MAX: Duration = Duration::from_millis(1000);
/// Connections to the peer port open at once, per other member (a member has one, and
/// briefly a second while it reconnects); at least [`PEER_CONNECTIONS_MIN`]. Beyond it a
/// new connection is closed at once: each costs a thread.
pub const PEER_CONNECTIONS_PER_MEMBER: usize = 4;
/// The least cap on connections to the peer port.
pub const PEER_CONNECTIONS_MIN: usize = 8;
/// How long a connection to the peer port may take to send its handshake (after TLS's,
/// which has its own limit) before it is closed.
pub const PEER_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the members authenticate on the peer port: neither (the port must be reachable
/// only from the members), mutual TLS, quorum SASL, or both.
#[derive(Debug, Clone, Default)]
pub struct PeerSecurity {
    /// Every connection is mutual TLS (`sslQuorum=true`).
    pub tls: Option<QuorumTls>,
    /// Members prove they hold the quorum credentials (`quorum.auth.enableSasl=true`).
    pub sasl: Option<QuorumSasl>,
}

/// Where to deliver what peers sent: `(sender, message)`.
pub type Inbound = SyncSender<crate::server::Event>;

/// The sending side of every link of this server. A clone sends on the same links (a
/// background thread sends snapshots with one).
#[derive(Debug, Clone)]
pub struct Peers {
    links: BTreeMap<NodeId, SyncSender<Vec<u8>>>,
    /// The longest frame sent or accepted.
    frame_bytes_max: u32,
}

impl Peers {
    /// Starts the listener on `listen` and one dialling link per entry of `others`
    /// (`host:port` of each other member); frames longer than `frame_bytes_max` are
    /// neither sent nor accepted; `security` says how members authenticate. Threads stop
    /// once `stop` is set (the listener within a poll interval). Fails when a thread
    /// cannot be started (the threads already started stop with `stop`).
    pub fn start(
        id: NodeId,
        listen: TcpListener,
        others: BTreeMap<NodeId, String>,
        frame_bytes_max: u32,
        security: PeerSecurity,
        inbound: Inbound,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Peers> {
        let PeerSecurity { tls, sasl } = security;
        let known: Arc<BTreeMap<NodeId, String>> = Arc::new(
            others
                .iter()
                .map(|(peer, address)| (*peer, host_of(address).to_owned()))
                .collect(),
        );
        let listen_stop = stop.clone();
        let listening = Listening {
            me: id,
            known,
            frame_bytes_max,
            tls: tls.clone(),
            sasl: sasl.clone(),
        };
        thread::Builder::new()
            .name("peer-listen".into())
            .spawn(move || listen_loop(listen, listening, inbound, listen_stop))?;
        let mut links = BTreeMap::new();
        for (peer, address) in others {
            let (tx, rx) = sync_channel(PEER_QUEUE_MESSAGES_MAX);
            let link_stop = stop.clone();
            let dialling = Dialling {
                me: id,
                peer,
                address,
                tls: tls.clone(),
                sasl: sasl.clone(),
            };
            thread::Builder::new()
                .name(format!("peer-{}", peer.0))
                .spawn(move || dial_loop(dialling, rx, link_stop))?;
            links.insert(peer, tx);
        }
        Ok(Peers {
            links,
            frame_bytes_max,
        })
    }

    /// Queues `msg` for `to`; drops it when the link's queue is full, `to` is unknown, or
    /// it is longer than a frame may be (the peer would close the connection on it).
    pub fn send(&self, to: NodeId, msg: &PeerMessage) {
        let Some(link) = self.links.get(&to) else {
            return;
        };
        let bytes = msg.encode();
        if bytes.len() > self.frame_bytes_max as usize {
            tracing::warn!(
                peer = to.0,
                bytes = bytes.len(),
                limit = self.frame_bytes_max,
                "peer message longer than a frame may be; dropped"
            );
            return;
        }
        match link.try_send(bytes) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                tracing::debug!(peer = to.0, "peer queue full; message dropped");
            }
        }
    }
}

/// The host of a `host:port` address (`[v6]:port` too), without brackets.
pub fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The handshake a server sends first (without quorum SASL).
pub fn handshake_encode(id: NodeId) -> [u8; PEER_HANDSHAKE_BYTES] {
    handshake_encode_with(PEER_MAGIC, id)
}

/// The handshake with `magic`: [`PEER_MAGIC`], or [`SASL_MAGIC`] when quorum SASL
/// follows.
pub fn handshake_encode_with(magic: [u8; 8], id: NodeId) -> [u8; PEER_HANDSHAKE_BYTES] {
    let mut out = [0u8; PEER_HANDSHAKE_BYTES];
    out[..8].copy_from_slice(&magic);
    out[8..12].copy_from_slice(&PEER_PROTOCOL_VERSION.to_le_bytes());
    out[12..].copy_from_slice(&id.0.to_le_bytes());
    out
}

/// Why a peer's handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// Not a Paddock peer.
    #[error("bad magic")]
    Magic,
    /// Another protocol version.
    #[error("protocol version {0}, this server speaks {PEER_PROTOCOL_VERSION}")]
    Version(u32),
    /// A sender id that is not in this server's config.
    #[error("unknown server id {0}")]
    UnknownId(u64),
}

/// Checks a handshake against the ids this server knows: the sender, and whether quorum
/// SASL follows (magic [`SASL_MAGIC`]).
pub fn handshake_decode(
    bytes: &[u8; PEER_HANDSHAKE_BYTES],
    known: &[NodeId],
) -> Result<(NodeId, bool), HandshakeError> {
    let (magic, rest) = bytes.split_at(8);
    let sasl = if magic == PEER_MAGIC {
        false
    } else if magic == SASL_MAGIC {
        true
    } else {
        return Err(HandshakeError::Magic);
    };
    let (version, id) = rest.split_at(4);
    let version = u32::from_le_bytes(version.try_into().map_err(|_| HandshakeError::Magic)?);
    if version != PEER_PROTOCOL_VERSION {
        return Err(HandshakeError::Version(version));
    }
    let id = NodeId(u64::from_le_bytes(
        id.try_into().map_err(|_| HandshakeError::Magic)?,
    ));
    if !known.contains(&id) {
        return Err(HandshakeError::UnknownId(id.0));
    }
    Ok((id, sasl))
}

/// What the listener checks accepted connections against.
struct Listening {
    /// This server.
    me: NodeId,
    /// The other members and their hosts.
    known: Arc<BTreeMap<NodeId, String>>,
    frame_bytes_max: u32,
    tls: Option<QuorumTls>,
    sasl: Option<QuorumSasl>,
}

fn listen_loop(
    listener: TcpListener,
    listening: Listening,
    inbound: Inbound,
    stop: Arc<AtomicBool>,
) {
    let listening = Arc::new(listening);
    // Non-blocking accept polled every few ms, so the thread sees `stop`.
    if let Err(error) = listener.set_nonblocking(true) {
        tracing::error!(%error, "peer listener cannot poll");
        return;
    }
    let cap = (listening.known.len() * PEER_CONNECTIONS_PER_MEMBER).max(PEER_CONNECTIONS_MIN);
    let open = Arc::new(AtomicUsize::new(0));
    let mut refusing = false;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, addr)) if open.load(Ordering::Acquire) >= cap => {
                // Closed at once (dropped). Said once per burst, not per connection.
                if !refusing {
                    tracing::warn!(%addr, cap, "peer port: too many connections; refusing new ones");
                }
                refusing = true;
                drop(stream);
            }
            Ok((stream, addr)) => {
                refusing = false;
                open.fetch_add(1, Ordering::AcqRel);
                let guard = OpenGuard(open.clone());
                let listening = listening.clone();
                let inbound = inbound.clone();
                let stop = stop.clone();
                let spawned = thread::Builder::new()
                    .name("peer-read".into())
                    .spawn(move || {
                        let _guard = guard;
                        read_connection(stream, addr, &listening, &inbound, &stop)
                    });
                if let Err(error) = spawned {
                    tracing::warn!(%error, "cannot start a peer reader");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(error) => {
                tracing::warn!(%error, "peer accept failed");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Counts a reader thread among the open connections while it lives.
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn read_connection(
    stream: TcpStream,
    addr: SocketAddr,
    link: &Listening,
    inbound: &Inbound,
    stop: &AtomicBool,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    // Only the few bytes of a SASL handshake are written here; a peer that does not
    // read them cannot hold the thread for long.
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    // A read timeout lets the thread notice `stop`; a silent link is normal between
    // heartbeats, so the timeout only loops.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let (mut stream, cert): (Box<dyn PeerStream>, _) = match &link.tls {
        None => (Box::new(stream), None),
        Some(tls) => match tls.accept(stream, stop) {
            Ok((stream, cert)) => (Box::new(stream), Some(cert)),
            Err(error) => {
                tracing::warn!(%addr, %error, "peer connection refused: TLS handshake failed");
                return;
            }
        },
    };
    // Unbuffered until the handshake is over: exactly its bytes are read.
    let mut handshake = [0u8; PEER_HANDSHAKE_BYTES];
    let deadline = Instant::now() + PEER_HANDSHAKE_TIMEOUT;
    if let Err(error) = read_exact_until(&mut stream, &mut handshake, stop, Some(deadline)) {
        if error.kind() == io::ErrorKind::TimedOut {
            tracing::warn!(%addr, "peer connection refused: no handshake in time");
        }
        return;
    }
    let known: Vec<NodeId> = link.known.keys().copied().collect();
    let (from, announces_sasl) = match handshake_decode(&handshake, &known) {
        Ok(decoded) => decoded,
        Err(error) => {
            tracing::warn!(%addr, %error, "peer connection refused");
            return;
        }
    };
    if let (Some(tls), Some(cert), Some(host)) = (&link.tls, &cert, link.known.get(&from))
        && let Err(error) = tls.certificate_names(cert, host)
    {
        tracing::warn!(
            %addr,
            claimed = from.0,
            %host,
            %error,
            "peer connection refused: its certificate is not valid for the host of the member it claims to be"
        );
        return;
    }
    let authenticated = match (&link.sasl, announces_sasl) {
        (Some(sasl), true) => sasl
            .accept(&mut stream, from, link.me, stop, deadline)
            .map(Some),
        (Some(sasl), false) if sasl.server_require() => {
            Err(peer_auth::PeerAuthError::Unauthenticated)
        }
        (None, true) => peer_auth::decline(&mut stream, stop, deadline).map(|()| None),
        (_, false) => Ok(None),
    };
    match authenticated {
        Ok(Some(user)) => {
            tracing::debug!(%addr, claimed = from.0, %user, "peer authenticated (quorum SASL)");
        }
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(%addr, claimed = from.0, %error, "peer connection refused: quorum SASL failed");
            return;
        }
    }
    let mut reader = BufReader::new(stream);
    let frame_bytes_max = link.frame_bytes_max;
    tracing::debug!(peer = from.0, %addr, "peer connected");
    loop {
        let payload = match read_frame(&mut reader, frame_bytes_max, stop) {
            Ok(payload) => payload,
            Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(peer = from.0, %error, "peer frame refused; closing");
                return;
            }
            Err(_) => return,
        };
        match PeerMessage::decode(&payload) {
            Ok(msg) => {
                if inbound.send(crate::server::Event::Peer(from, msg)).is_err() {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(peer = from.0, %error, "malformed peer message; closing");
                return;
            }
        }
    }
}

/// Reads one frame's length and payload; a length above `frame_bytes_max` is an
/// `InvalidData` error before any of its payload is read.
fn read_frame(
    reader: &mut impl Read,
    frame_bytes_max: u32,
    stop: &AtomicBool,
) -> io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    read_exact_until_stop(reader, &mut length, stop)?;
    let length = u32::from_le_bytes(length);
    if length > frame_bytes_max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {length} bytes is above the limit of {frame_bytes_max}"),
        ));
    }
    read_frame_payload(reader, length as usize, stop)
}

/// Reads a frame's `length` bytes into a buffer that grows by at most
/// [`PEER_READ_CHUNK_BYTES`] ahead of what arrived: a length a peer claims but does not
/// send costs no memory.
fn read_frame_payload(
    reader: &mut impl Read,
    length: usize,
    stop: &AtomicBool,
) -> io::Result<Vec<u8>> {
    let mut payload = Vec::new();
    while payload.len() < length {
        let start = payload.len();
        let end = length.min(start.saturating_add(PEER_READ_CHUNK_BYTES));
        payload.resize(end, 0);
        read_exact_until_stop(reader, &mut payload[start..end], stop)?;
    }
    Ok(payload)
}

/// `read_exact` that keeps going across read timeouts until `stop` is set.
fn read_exact_until_stop(
    reader: &mut impl Read,
    buf: &mut [u8],
    stop: &AtomicBool,
) -> io::Result<()> {
    read_exact_until(reader, buf, stop, None)
}

/// `read_exact` that keeps going across read timeouts until `stop` is set or, with a
/// `deadline`, until then (a `TimedOut` error).
pub(crate) fn read_exact_until(
    reader: &mut impl Read,
    mut buf: &mut [u8],
    stop: &AtomicBool,
    deadline: Option<Instant>,
) -> io::Result<()> {
    while !buf.is_empty() {
        if stop.load(Ordering::Relaxed) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        if deadline.is_some_and(|deadline| Instant::now() > deadline) {
            return Err(io::ErrorKind::TimedOut.into());
        }
        match reader.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf = &mut buf[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One outbound link: who dials whom, and how it authenticates.
struct Dialling {
    me: NodeId,
    peer: NodeId,
    address: String,
    tls: Option<QuorumTls>,
    sasl: Option<QuorumSasl>,
}

fn dial_loop(link: Dialling, queue: Receiver<Vec<u8>>, stop: Arc<AtomicBool>) {
    let Dialling {
        me: id,
        peer,
        address,
        tls,
        sasl,
    } = &link;
    let (id, peer) = (*id, *peer);
    let mut delay = RECONNECT_DELAY_MIN;
    while !stop.load(Ordering::Relaxed) {
        let dialled = dial(address).and_then(|stream| {
            let _ = stream.set_nodelay(true);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            Ok(match &tls {
                None => Box::new(stream) as Box<dyn PeerStream>,
                Some(tls) => Box::new(tls.connect(host_of(address), stream).inspect_err(
                    |error| {
                        tracing::warn!(peer = peer.0, %address, %error, "TLS handshake with peer failed");
                    },
                )?),
            })
        });
        match dialled {
            Ok(stream) => {
                delay = RECONNECT_DELAY_MIN;
                tracing::debug!(peer = peer.0, %address, "dialled peer");
                match send_loop(id, peer, stream, sasl.as_ref(), &queue, &stop) {
                    SendEnd::QueueClosed => return,
                    SendEnd::Broken(error) => {
                        tracing::debug!(peer = peer.0, %error, "peer link broke; reconnecting");
                    }
                }
            }
            Err(error) => {
                tracing::trace!(peer = peer.0, %address, %error, "peer unreachable");
            }
        }
        // Messages queued while the link was down are stale; replication resends.
        while queue.try_recv().is_ok() {}
        thread::sleep(delay);
        delay = (delay * 2).min(RECONNECT_DELAY_MAX);
    }
}

fn dial(address: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolves to nothing");
    for addr in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = error,
        }
    }
    Err(last)
}

enum SendEnd {
    QueueClosed,
    Broken(io::Error),
}

fn send_loop(
    id: NodeId,
    peer: NodeId,
    mut stream: Box<dyn PeerStream>,
    sasl: Option<&QuorumSasl>,
    queue: &Receiver<Vec<u8>>,
    stop: &AtomicBool,
) -> SendEnd {
    let magic = if sasl.is_some() {
        SASL_MAGIC
    } else {
        PEER_MAGIC
    };
    if let Err(error) = stream
        .write_all(&handshake_encode_with(magic, id))
        .and_then(|()| stream.flush())
    {
        return SendEnd::Broken(error);
    }
    if let Some(sasl) = sasl {
        let deadline = Instant::now() + PEER_HANDSHAKE_TIMEOUT;
        if let Err(error) = sasl.connect(&mut stream, id, peer, stop, deadline) {
            tracing::warn!(peer = peer.0, %error, "quorum SASL with peer failed");
            return SendEnd::Broken(io::Error::other(error.to_string()));
        }
    }
    let mut writer = BufWriter::new(stream);
    loop {
        let bytes = match queue.recv_timeout(Duration::from_millis(200)) {
            Ok(bytes) => bytes,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::Relaxed) {
                    return SendEnd::QueueClosed;
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return SendEnd::QueueClosed,
        };
        let mut result = frame_write(&mut writer, &bytes);
        // Write everything already queued before one flush: fewer syscalls under load.
        while result.is_ok() {
            match queue.try_recv() {
                Ok(more) => result = frame_write(&mut writer, &more),
                Err(_) => break,
            }
        }
        if let Err(error) = result.and_then(|()| writer.flush()) {
            return SendEnd::Broken(error);
        }
    }
}

fn frame_write(writer: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let length = u32::try_from(payload.len())
        .ok()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "peer frame too large"))?;
    writer.write_all(&length.to_le_bytes())?;
    writer.write_all(payload)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // The handshake round-trips (saying whether quorum SASL follows), and a wrong magic,
    // version or sender is refused.
    #[test]
    fn handshake_checks() {
        let known = [NodeId(1), NodeId(2)];
        let good = handshake_encode(NodeId(2));
        assert_eq!(handshake_decode(&good, &known), Ok((NodeId(2), false)));
        let sasl = handshake_encode_with(SASL_MAGIC, NodeId(1));
        assert_eq!(handshake_decode(&sasl, &known), Ok((NodeId(1), true)));
        let stranger = handshake_encode(NodeId(9));
        assert_eq!(
            handshake_decode(&stranger, &known),
            Err(HandshakeError::UnknownId(9))
        );
        let mut old = good;
        old[8] = 7;
        assert_eq!(
            handshake_decode(&old, &known),
            Err(HandshakeError::Version(7))
        );
        // Version 1 sent a snapshot in one message: it cannot talk to this build.
        let mut whole_snapshots = good;
        whole_snapshots[8] = 1;
        assert_eq!(
            handshake_decode(&whole_snapshots, &known),
            Err(HandshakeError::Version(1))
        );
        let mut foreign = good;
        foreign[0] = b'X';
        assert_eq!(
            handshake_decode(&foreign, &known),
            Err(HandshakeError::Magic)
        );
    }

    // A frame is read whole across the buffer's growth steps; a frame that claims
    // (nearly) 4 GiB and sends 10 bytes ends with an error after one growth step,
    // without a buffer of the claimed size.
    #[test]
    fn frame_payload_grows_with_the_bytes_that_arrive() {
        let stop = AtomicBool::new(false);
        let sent: Vec<u8> = (0..PEER_READ_CHUNK_BYTES * 2 + 5)
            .map(|i| i as u8)
            .collect();
        let read = read_frame_payload(&mut &sent[..], sent.len(), &stop).unwrap();
        assert_eq!(read, sent);
        let error = read_frame_payload(&mut &[1u8; 10][..], u32::MAX as usize, &stop).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    // A frame is bounded: a length above the limit is refused before its payload is
    // read; one at the limit is read.
    #[test]
    fn frame_above_the_limit_is_refused() {
        let stop = AtomicBool::new(false);
        let mut at_limit = 16u32.to_le_bytes().to_vec();
        at_limit.extend_from_slice(&[7; 16]);
        assert_eq!(
            read_frame(&mut &at_limit[..], 16, &stop).unwrap(),
            vec![7; 16]
        );
        let error = read_frame(&mut &at_limit[..], 15, &stop).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(
            error.to_string().contains("above the limit of 15"),
            "{error}"
        );
    }
}
