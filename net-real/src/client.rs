//! `client`: a small blocking ZooKeeper client on `paddock_core::wire`, for `paddock ctl`,
//! the load generator and the tests.
//!
//! One request at a time: a call sends one frame and reads until the matching reply,
//! keeping watch events that arrive meanwhile for [`Client::next_event`]. It pings the
//! server while waiting for events so the session stays alive. It does not reconnect,
//! pipeline requests or restore watches: a lost connection is an error to the caller.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use paddock_core::acl::Acl;
use paddock_core::error::ZkError;
use paddock_core::ids::SessionId;
use paddock_core::stat::Stat;
use paddock_core::wire::{
    AuthPacket, ConnectRequest, CreateRequest, DecodeError, DeleteRequest, FrameSplitter,
    MAX_FRAME_BYTES_DEFAULT, OpCode, PathWatchRequest, Reply, ReplyHeader, Request, RequestHeader,
    Response, SetDataRequest, WatcherEvent, decode_connect_response, decode_reply,
    encode_connect_request, encode_request, frame,
};

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket failed or timed out.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The server sent bytes that do not decode.
    #[error("bad reply: {0}")]
    Decode(#[from] DecodeError),
    /// The server answered with an error code.
    #[error("server error {0:?}")]
    Zk(ZkError),
    /// The server answered with an error code ZooKeeper 3.8 does not define.
    #[error("server error code {0}")]
    Code(i32),
    /// The server refused the session (timeout 0 in the connect response).
    #[error("session refused or expired")]
    SessionExpired,
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// The reply had an unexpected shape.
    #[error("unexpected reply {0:?}")]
    Unexpected(Box<Reply>),
}

/// A connected session. See the module documentation.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    splitter: FrameSplitter,
    next_xid: i32,
    /// The session id the server granted.
    pub session_id: SessionId,
    /// The session's password, as the server granted it.
    pub password: Vec<u8>,
    /// The negotiated session timeout, ms.
    pub timeout_ms: i32,
    /// The highest zxid seen in a reply.
    pub last_zxid: i64,
    events: VecDeque<WatcherEvent>,
    last_sent: Instant,
}

/// Sends a four-letter word to `addr` and returns the whole answer.
pub fn four_letter(addr: &str, word: &str) -> Result<String, ClientError> {
    let mut stream = connect_stream(addr, Duration::from_secs(5))?;
    stream.write_all(word.as_bytes())?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

fn connect_stream(addr: &str, timeout: Duration) -> Result<TcpStream, ClientError> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolves to nothing");
    for sock in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&sock, timeout) {
            Ok(stream) => {
                stream.set_read_timeout(Some(timeout))?;
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(ClientError::Io(last))
}

fn check(header: &ReplyHeader) -> Result<(), ClientError> {
    match (header.err, header.error()) {
        (0, _) => Ok(()),
        (_, Some(e)) => Err(ClientError::Zk(e)),
        (code, None) => Err(ClientError::Code(code)),
    }
}

impl Client {
    /// Opens a new session on `addr` (`host:port`) asking for `timeout_ms`.
    pub fn connect(addr: &str, timeout_ms: i32) -> Result<Client, ClientError> {
        let stream = connect_stream(addr, Duration::from_secs(10))?;
        let mut client = Client {
            stream,
            splitter: FrameSplitter::new(MAX_FRAME_BYTES_DEFAULT),
            next_xid: 1,
            session_id: SessionId(0),
            password: Vec::new(),
            timeout_ms,
            last_zxid: 0,
            events: VecDeque::new(),
            last_sent: Instant::now(),
        };
        let mut payload = Vec::new();
        encode_connect_request(
            &ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms,
                session_id: SessionId(0),
                passwd: vec![0; 16],
                read_only: Some(false),
            },
            &mut payload,
        );
        client.stream.write_all(&frame(&payload))?;
        let reply = client.read_frame()?;
        let response = decode_connect_response(&reply)?;
        if response.timeout_ms <= 0 {
            return Err(ClientError::SessionExpired);
        }
        client.session_id = response.session_id;
        client.password = response.passwd;
        client.timeout_ms = response.timeout_ms;
        Ok(client)
    }

    fn read_frame(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            if let Some(payload) = self.splitter.next_frame()? {
                return Ok(payload);
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.splitter.push(buf.get(..n).unwrap_or_default());
        }
    }

    fn send(&mut self, xid: i32, request: &Request) -> Result<(), ClientError> {
        let mut payload = Vec::new();
        encode_request(
            &RequestHeader {
                xid,
                op: request.op_code(),
            },
            request,
            &mut payload,
        );
        self.stream.write_all(&frame(&payload))?;
        self.last_sent = Instant::now();
        Ok(())
    }

    /// Sends `request` and waits for its reply; events arriving meanwhile are kept.
    pub fn call(&mut self, request: &Request) -> Result<(ReplyHeader, Reply), ClientError> {
        let xid = self.next_xid;
        self.next_xid += 1;
        let op = OpCode::try_from(request.op_code()).map_err(|_| ClientError::Code(-1))?;
        self.send(xid, request)?;
        loop {
            let payload = self.read_frame()?;
            let (header, reply) = decode_reply(&payload, op)?;
            match reply {
                Reply::Event(event) => self.events.push_back(event),
                Reply::Ping => {}
                reply => {
                    if header.zxid > self.last_zxid {
                        self.last_zxid = header.zxid;
                    }
                    return Ok((header, reply));
                }
            }
        }
    }

    /// Adds an identity to the session (`scheme` `digest` with `user:password`), as the
    /// Java client's `addAuthInfo` does: an auth packet with xid -4, waited for.
    pub fn add_auth(&mut self, scheme: &str, auth: &[u8]) -> Result<(), ClientError> {
        const XID_AUTH: i32 = -4;
        let request = Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: scheme.to_owned(),
            auth: auth.to_vec(),
        });
        self.send(XID_AUTH, &request)?;
        loop {
            let payload = self.read_frame()?;
            let (header, reply) = decode_reply(&payload, OpCode::Auth)?;
            match reply {
                Reply::Event(event) => self.events.push_back(event),
                Reply::Ping => {}
                _ => return check(&header),
            }
        }
    }

    /// `call` for requests whose success carries a body.
    fn call_body(&mut self, request: &Request) -> Result<Option<Response>, ClientError> {
        let (header, reply) = self.call(request)?;
        check(&header)?;
        match reply {
            Reply::Response(body) => Ok(body),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Creates `path` with `data`, open ACL and CreateMode `flags`; returns the created
    /// path (differs from `path` for sequential nodes).
    pub fn create(&mut self, path: &str, data: &[u8], flags: i32) -> Result<String, ClientError> {
        let request = Request::Create(CreateRequest {
            path: path.to_owned(),
            data: Some(data.to_vec()),
            acl: Acl::open_unsafe(),
            flags,
        });
        match self.call_body(&request)? {
            Some(Response::Create(created)) => Ok(created.path),
            other => Err(ClientError::Unexpected(Box::new(Reply::Response(other)))),
        }
    }

    /// Reads `path`'s data and stat, leaving a data watch when `watch`.
    pub fn get(&mut self, path: &str, watch: bool) -> Result<(Vec<u8>, Stat), ClientError> {
        let request = Request::GetData(PathWatchRequest {
            path: path.to_owned(),
            watch,
        });
        match self.call_body(&request)? {
            Some(Response::GetData(got)) => Ok((got.data.unwrap_or_default(), got.stat)),
            other => Err(ClientError::Unexpected(Box::new(Reply::Response(other)))),
        }
    }

    /// The stat of `path`, `None` when it does not exist; leaves a watch when `watch`.
    pub fn exists(&mut self, path: &str, watch: bool) -> Result<Option<Stat>, ClientError> {
        let request = Request::Exists(PathWatchRequest {
            path: path.to_owned(),
            watch,
        });
        match self.call_body(&request) {
            Ok(Some(Response::Stat(stat))) => Ok(Some(stat)),
            Err(ClientError::Zk(ZkError::NoNode)) => Ok(None),
            Ok(other) => Err(ClientError::Unexpected(Box::new(Reply::Response(other)))),
            Err(e) => Err(e),
        }
    }

    /// Sets `path`'s data if its version is `version` (-1: any).
    pub fn set(&mut self, path: &str, data: &[u8], version: i32) -> Result<Stat, ClientError> {
        let request = Request::SetData(SetDataRequest {
            path: path.to_owned(),
            data: Some(data.to_vec()),
            version,
        });
        match self.call_body(&request)? {
            Some(Response::Stat(stat)) => Ok(stat),
            other => Err(ClientError::Unexpected(Box::new(Reply::Response(other)))),
        }
    }

    /// Deletes `path` if its version is `version` (-1: any).
    pub fn delete(&mut self, path: &str, version: i32) -> Result<(), ClientError> {
        let request = Request::Delete(DeleteRequest {
            path: path.to_owned(),
            version,
        });
        self.call_body(&request).map(|_| ())
    }

    /// The children of `path`, sorted; leaves a child watch when `watch`.
    pub fn children(&mut self, path: &str, watch: bool) -> Result<Vec<String>, ClientError> {
        let request = Request::GetChildren(PathWatchRequest {
            path: path.to_owned(),
            watch,
        });
        match self.call_body(&request)? {
            Some(Response::GetChildren(mut names)) => {
                names.sort();
                Ok(names)
            }
            other => Err(ClientError::Unexpected(Box::new(Reply::Response(other)))),
        }
    }

    /// Waits up to `timeout` for a watch event, pinging to keep the session alive.
    /// `Ok(None)` when none came in time.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<WatcherEvent>, ClientError> {
        let deadline = Instant::now() + timeout;
        let ping_every = Duration::from_millis((self.timeout_ms / 3).max(10) as u64);
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            if now.duration_since(self.last_sent) >= ping_every {
                self.send(-2, &Request::Ping)?;
            }
            let wait = deadline
                .min(self.last_sent + ping_every)
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            self.stream.set_read_timeout(Some(wait))?;
            let read = self.read_frame();
            self.stream
                .set_read_timeout(Some(Duration::from_secs(10)))?;
            match read {
                Ok(payload) => {
                    // Only pings and events arrive unasked; the pending op is irrelevant.
                    if let (_, Reply::Event(event)) = decode_reply(&payload, OpCode::Ping)? {
                        self.events.push_back(event);
                    }
                }
                Err(ClientError::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Closes the session (closeSession, then the socket).
    pub fn close(mut self) -> Result<(), ClientError> {
        let result = self.call(&Request::CloseSession).map(|_| ());
        let _ = self.stream.shutdown(Shutdown::Both);
        result
    }
}
