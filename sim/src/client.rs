//! A simulated ZooKeeper client, speaking the real wire protocol through
//! `paddock_core::wire`, with the timing rules of the Java client and kazoo: ping when idle
//! for a third of the session timeout, give up on a silent connection after two thirds,
//! reconnect to another server with the session id, password and lastZxidSeen, and start
//! a new session when told the old one expired. One operation is outstanding at a time,
//! so each client is one process of the history.

use paddock_core::ids::{ConnId, NodeId, SessionId};
use paddock_core::wire::{
    self, ConnectRequest, FrameSplitter, OpCode, Reply, Request, RequestHeader,
};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::history::{ClientId, EventRecord, History, OpRecord, Outcome, SessionRecord};
use crate::workload;

/// Session timeout every client asks for, ms.
pub const SESSION_TIMEOUT_MS: u32 = 6000;

/// What a client asks the world to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a connection to `server`; the world answers with `SimClient::opened`.
    Connect {
        /// The server.
        server: NodeId,
    },
    /// Send bytes on the open connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// Whole frames.
        bytes: Vec<u8>,
    },
    /// Close the connection from the client side.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

#[derive(Debug)]
struct Link {
    conn: ConnId,
    server: NodeId,
    splitter: FrameSplitter,
    connected: bool,
    opened_ms: u64,
}

#[derive(Debug)]
struct Outstanding {
    xid: i32,
    op: OpCode,
    record: usize,
}

/// One client.
#[derive(Debug)]
pub struct SimClient {
    id: ClientId,
    servers: u64,
    link: Option<Link>,
    session: Option<(SessionId, Vec<u8>)>,
    timeout_ms: u64,
    last_zxid: i64,
    next_xid: i32,
    outstanding: Option<Outstanding>,
    ops_left: u64,
    next_op_ms: u64,
    last_heard_ms: u64,
    last_sent_ms: u64,
    connecting: bool,
}

impl SimClient {
    /// A client that will perform `ops` operations against an ensemble of `servers`.
    pub fn new(id: ClientId, servers: u64, ops: u64) -> SimClient {
        SimClient {
            id,
            servers,
            link: None,
            session: None,
            timeout_ms: u64::from(SESSION_TIMEOUT_MS),
            last_zxid: 0,
            next_xid: 1,
            outstanding: None,
            ops_left: ops,
            next_op_ms: 0,
            last_heard_ms: 0,
            last_sent_ms: 0,
            connecting: false,
        }
    }

    /// True once every operation finished.
    pub fn done(&self) -> bool {
        self.ops_left == 0 && self.outstanding.is_none()
    }

    /// True while an operation waits for its answer.
    pub fn busy(&self) -> bool {
        self.outstanding.is_some()
    }

    /// The connection currently open, if any.
    pub fn conn(&self) -> Option<ConnId> {
        self.link.as_ref().map(|l| l.conn)
    }

    /// The world opened the connection asked for by `Action::Connect`.
    pub fn opened(&mut self, now_ms: u64, conn: ConnId, server: NodeId) -> Vec<Action> {
        self.connecting = false;
        self.link = Some(Link {
            conn,
            server,
            splitter: FrameSplitter::new(wire::MAX_FRAME_BYTES_DEFAULT),
            connected: false,
            opened_ms: now_ms,
        });
        let (session_id, passwd) = self.session.clone().unwrap_or((SessionId(0), vec![0; 16]));
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout_ms: i32::try_from(SESSION_TIMEOUT_MS).unwrap_or(i32::MAX),
            session_id,
            passwd,
            read_only: Some(false),
        };
        let mut payload = Vec::new();
        wire::encode_connect_request(&request, &mut payload);
        self.last_sent_ms = now_ms;
        self.last_heard_ms = now_ms;
        vec![Action::Send {
            conn,
            bytes: wire::frame(&payload),
        }]
    }

    /// The connection closed (server side, crash, or our own close).
    pub fn closed(&mut self, now_ms: u64, history: &mut History) {
        self.link = None;
        self.connecting = false;
        if let Some(out) = self.outstanding.take()
            && let Some(record) = history.ops.get_mut(out.record)
        {
            record.outcome = Outcome::Lost;
            record.completed_ms = Some(now_ms);
        }
    }

    /// Time passed: connect, time out, ping or issue the next operation. Returns actions
    /// and when to wake next.
    pub fn wake(
        &mut self,
        now_ms: u64,
        rng: &mut ChaCha8Rng,
        history: &mut History,
    ) -> (Vec<Action>, u64) {
        let mut actions = Vec::new();
        match &self.link {
            None if !self.connecting && !self.done() => {
                let server = NodeId(rng.random_range(1..=self.servers));
                self.connecting = true;
                actions.push(Action::Connect { server });
            }
            Some(link)
                if !link.connected
                // Connect timeout: timeout / servers, as the Java client and kazoo do.
                && now_ms >= link.opened_ms + self.timeout_ms / self.servers.max(1) =>
            {
                actions.push(Action::Close { conn: link.conn });
                self.closed(now_ms, history);
            }
            Some(link) => {
                let conn = link.conn;
                let server = link.server;
                if now_ms >= self.last_heard_ms + self.timeout_ms * 2 / 3 {
                    actions.push(Action::Close { conn });
                    self.closed(now_ms, history);
                } else if self.outstanding.is_none()
                    && self.ops_left > 0
                    && now_ms >= self.next_op_ms
                {
                    let request = workload::next_request(rng);
                    actions.push(self.send(now_ms, conn, server, request, history));
                } else if now_ms >= self.last_sent_ms + self.timeout_ms / 3 {
                    actions.push(self.ping(now_ms, conn));
                }
            }
            None => {}
        }
        let next = match &self.link {
            None => now_ms + 50,
            Some(_) => now_ms + 20,
        };
        (actions, next)
    }

    fn ping(&mut self, now_ms: u64, conn: ConnId) -> Action {
        let mut payload = Vec::new();
        wire::encode_request(
            &RequestHeader {
                xid: -2,
                op: OpCode::Ping.code(),
            },
            &Request::Ping,
            &mut payload,
        );
        self.last_sent_ms = now_ms;
        Action::Send {
            conn,
            bytes: wire::frame(&payload),
        }
    }

    fn send(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        server: NodeId,
        request: Request,
        history: &mut History,
    ) -> Action {
        let xid = self.next_xid;
        self.next_xid += 1;
        let op = OpCode::try_from(request.op_code()).unwrap_or(OpCode::Ping);
        let mut payload = Vec::new();
        wire::encode_request(
            &RequestHeader {
                xid,
                op: request.op_code(),
            },
            &request,
            &mut payload,
        );
        let session = self.session.as_ref().map(|s| s.0).unwrap_or_default();
        history.ops.push(OpRecord {
            client: self.id,
            session,
            server,
            xid,
            request,
            ids: Vec::new(),
            invoked_ms: now_ms,
            completed_ms: None,
            outcome: Outcome::Pending,
        });
        self.outstanding = Some(Outstanding {
            xid,
            op,
            record: history.ops.len() - 1,
        });
        self.ops_left = self.ops_left.saturating_sub(1);
        self.last_sent_ms = now_ms;
        Action::Send {
            conn,
            bytes: wire::frame(&payload),
        }
    }

    /// Bytes from the server.
    pub fn receive(
        &mut self,
        now_ms: u64,
        bytes: &[u8],
        rng: &mut ChaCha8Rng,
        history: &mut History,
    ) -> Vec<Action> {
        let Some(link) = &mut self.link else {
            return Vec::new();
        };
        link.splitter.push(bytes);
        let mut actions = Vec::new();
        loop {
            let Some(link) = &mut self.link else {
                return actions;
            };
            let conn = link.conn;
            let frame = match link.splitter.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return actions,
                Err(_) => {
                    actions.push(Action::Close { conn });
                    self.closed(now_ms, history);
                    return actions;
                }
            };
            self.last_heard_ms = now_ms;
            if !link.connected {
                self.receive_connect(now_ms, &frame, history, &mut actions);
            } else {
                self.receive_reply(now_ms, &frame, rng, history, &mut actions);
            }
        }
    }

    fn receive_connect(
        &mut self,
        now_ms: u64,
        frame: &[u8],
        history: &mut History,
        actions: &mut Vec<Action>,
    ) {
        let Some(link) = &mut self.link else {
            return;
        };
        let conn = link.conn;
        let Ok(response) = wire::decode_connect_response(frame) else {
            actions.push(Action::Close { conn });
            self.closed(now_ms, history);
            return;
        };
        if response.timeout_ms <= 0 {
            // The session expired: start over with a new one, as kazoo does.
            if let Some((session, _)) = self.session.take()
                && let Some(record) = history
                    .sessions
                    .iter_mut()
                    .rev()
                    .find(|s| s.session == session)
            {
                record.expired_ms.get_or_insert(now_ms);
            }
            self.last_zxid = self.last_zxid.max(0);
            actions.push(Action::Close { conn });
            self.closed(now_ms, history);
            return;
        }
        link.connected = true;
        self.timeout_ms = u64::try_from(response.timeout_ms).unwrap_or(6000);
        if self.session.as_ref().map(|s| s.0) != Some(response.session_id) {
            history.sessions.push(SessionRecord {
                client: self.id,
                session: response.session_id,
                created_ms: now_ms,
                expired_ms: None,
            });
        }
        self.session = Some((response.session_id, response.passwd));
    }

    fn receive_reply(
        &mut self,
        now_ms: u64,
        frame: &[u8],
        rng: &mut ChaCha8Rng,
        history: &mut History,
        actions: &mut Vec<Action>,
    ) {
        let Some(link) = &self.link else {
            return;
        };
        let (conn, server) = (link.conn, link.server);
        let pending = self.outstanding.as_ref().map_or(OpCode::Ping, |o| o.op);
        let Ok((header, reply)) = wire::decode_reply(frame, pending) else {
            actions.push(Action::Close { conn });
            self.closed(now_ms, history);
            return;
        };
        if header.zxid > 0 {
            self.last_zxid = self.last_zxid.max(header.zxid);
        }
        match reply {
            wire::Reply::Event(event) => history.events.push(EventRecord {
                client: self.id,
                server,
                at_ms: now_ms,
                event,
                client_zxid: self.last_zxid,
            }),
            Reply::Ping | Reply::Auth | Reply::SetWatches => {}
            Reply::Response(response) => {
                let Some(out) = self.outstanding.take_if(|o| o.xid == header.xid) else {
                    // A reply to nothing we asked: the server broke FIFO order.
                    actions.push(Action::Close { conn });
                    self.closed(now_ms, history);
                    return;
                };
                if let Some(record) = history.ops.get_mut(out.record) {
                    record.outcome = Outcome::Reply {
                        zxid: header.zxid,
                        err: header.err,
                        response,
                    };
                    record.completed_ms = Some(now_ms);
                }
                self.next_op_ms = now_ms + rng.random_range(0..50);
            }
        }
    }
}
