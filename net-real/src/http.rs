//! The two HTTP endpoints ZooKeeper 3.8 serves beside its client port:
//!
//! - the **AdminServer** (`admin.enableServer`, default on; `admin.serverAddress`, default
//!   `0.0.0.0`; `admin.serverPort`, default 8080; `admin.commandURL`, default
//!   `/commands`): `GET /commands` lists the commands, `GET /commands/<name>` answers one
//!   as ZooKeeper's JSON (the command's fields, then `"command"` and `"error"`). Commands:
//!   `configuration` (`conf`, `config`), `dirs`, `environment` (`env`, `envi`),
//!   `is_read_only` (`isro`), `monitor` (`mntr`), `ruok`, `watch_summary` (`wchs`).
//! - **Prometheus metrics** (`metricsProvider.className=...PrometheusMetricsProvider`;
//!   `metricsProvider.httpHost`, default `0.0.0.0`; `metricsProvider.httpPort`, default
//!   7000): `GET /metrics` in Prometheus' text format, every numeric `mntr` value under
//!   ZooKeeper's name for it (the key without `zk_`: `znode_count`, `watch_count`,
//!   `outstanding_requests`, `avg_latency`, `quorum_size` in an ensemble, ...) and Paddock's own
//!   (`paddock_*`).
//!
//! Both take their figures from the event loop ([`crate::server::Event::Http`], answered
//! with `four_letter::answer_for_http`, whatever the four-letter whitelist says, as
//! ZooKeeper's do), so they report exactly what `mntr` and the other words report.
//!
//! One thread per endpoint serves one request at a time: the request head is read with a
//! 2 s timeout and at most [`REQUEST_HEAD_BYTES_MAX`] bytes, only `GET` and `HEAD` are
//! answered, and every response closes its connection. A port that cannot be bound is
//! logged and the server runs without it, as ZooKeeper does.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use paddock_core::wire::FourLetterWord;
use serde_json::{Map, Value};

/// The largest request head read (request line and headers); a longer one is refused.
pub const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;

/// How long a client may take to send its request head, and to take the response.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// How often an idle endpoint looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

/// How long an endpoint waits for the event loop's answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks the event loop for a word's answer; `None` when it is too busy or stopping.
pub type Ask = Arc<dyn Fn(FourLetterWord) -> Option<String> + Send + Sync>;

/// Which endpoint a listener serves.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// The AdminServer, its commands under this URL.
    Admin {
        /// `admin.commandURL`.
        command_url: String,
    },
    /// Prometheus' `/metrics`.
    Metrics,
}

/// The AdminServer's commands: primary name, aliases, the word it answers from.
const COMMANDS: &[(&str, &[&str], FourLetterWord)] = &[
    ("configuration", &["conf", "config"], FourLetterWord::Conf),
    ("dirs", &[], FourLetterWord::Dirs),
    ("environment", &["env", "envi"], FourLetterWord::Envi),
    ("is_read_only", &["isro"], FourLetterWord::Isro),
    ("monitor", &["mntr"], FourLetterWord::Mntr),
    ("ruok", &[], FourLetterWord::Ruok),
    ("watch_summary", &["wchs"], FourLetterWord::Wchs),
];

/// Serves `endpoint` on `listener` until `stop` is set.
pub fn spawn(
    listener: TcpListener,
    endpoint: Endpoint,
    ask: Ask,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("paddock-http".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Err(e) = serve(stream, &endpoint, &ask) {
                            tracing::debug!("http: {e}");
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(STOP_POLL);
                    }
                    Err(e) => {
                        tracing::warn!("http: accept failed: {e}");
                        std::thread::sleep(STOP_POLL);
                    }
                }
            }
        })
}

/// A response: status line, content type, body.
type Response = (&'static str, &'static str, String);

fn serve(mut stream: TcpStream, endpoint: &Endpoint, ask: &Ask) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let (head_only, response) = match head {
        None => (false, text(400, "a request head of at most 8 KiB\n")),
        Some(head) => respond(&head, endpoint, ask),
    };
    let (status, content_type, body) = response;
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&out)
}

/// The request head (up to the blank line), or `None` when it is longer than
/// [`REQUEST_HEAD_BYTES_MAX`] or the client ends it early.
fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&chunk[..read]);
        if let Some(end) = find(&head, b"\r\n\r\n").or_else(|| find(&head, b"\n\n")) {
            head.truncate(end);
            return Ok(Some(String::from_utf8_lossy(&head).into_owned()));
        }
        if head.len() > REQUEST_HEAD_BYTES_MAX {
            return Ok(None);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn text(status: u16, body: &str) -> Response {
    let line = match status {
        400 => "400 Bad Request",
        404 => "404 Not Found",
        405 => "405 Method Not Allowed",
        503 => "503 Service Unavailable",
        _ => "200 OK",
    };
    (line, "text/plain; charset=utf-8", body.to_owned())
}

/// The response to a request head; whether it is a HEAD request.
fn respond(head: &str, endpoint: &Endpoint, ask: &Ask) -> (bool, Response) {
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return (false, text(400, "bad request line\n"));
    };
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return (head_only, text(405, "only GET and HEAD\n"));
    }
    let path = target.split('?').next().unwrap_or_default();
    let response = match endpoint {
        Endpoint::Metrics if path == "/metrics" => match ask(FourLetterWord::Mntr) {
            Some(mntr) => (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                prometheus(&mntr),
            ),
            None => text(503, "the server is busy or stopping\n"),
        },
        Endpoint::Metrics => text(404, "not found: the metrics are at /metrics\n"),
        Endpoint::Admin { command_url } => admin(path, command_url, ask),
    };
    (head_only, response)
}

fn admin(path: &str, command_url: &str, ask: &Ask) -> Response {
    let base = command_url.trim_end_matches('/');
    let Some(rest) = path.strip_prefix(base) else {
        return text(404, "not found\n");
    };
    let name = rest.trim_matches('/');
    if name.is_empty() {
        let mut html = String::new();
        for (primary, _, _) in COMMANDS {
            html.push_str(&format!(
                "<a href=\"{base}/{primary}\">{primary}</a>\n<br/>\n"
            ));
        }
        return ("200 OK", "text/html; charset=utf-8", html);
    }
    let Some((primary, _, word)) = COMMANDS
        .iter()
        .find(|(primary, aliases, _)| *primary == name || aliases.contains(&name))
    else {
        let mut body = Map::new();
        body.insert("command".into(), Value::String(name.to_owned()));
        body.insert(
            "error".into(),
            Value::String(format!("Unknown command: {name}")),
        );
        // ZooKeeper answers an unknown command with 200 and the error in the JSON.
        return ("200 OK", "application/json", json_text(body));
    };
    let Some(answer) = ask(*word) else {
        return text(503, "the server is busy or stopping\n");
    };
    let mut body = command_json(*word, &answer);
    body.insert("command".into(), Value::String((*primary).to_owned()));
    body.insert("error".into(), Value::Null);
    ("200 OK", "application/json", json_text(body))
}

fn json_text(body: Map<String, Value>) -> String {
    let mut text = serde_json::to_string_pretty(&Value::Object(body)).unwrap_or_default();
    text.push('\n');
    text
}

/// A value as JSON: an integer or a number when it reads as one, else the string.
fn json_value(value: &str) -> Value {
    if let Ok(n) = value.parse::<i64>() {
        return Value::from(n);
    }
    match value.parse::<f64>() {
        Ok(x) if x.is_finite() => Value::from(x),
        _ => Value::String(value.to_owned()),
    }
}

/// `camelCase` as `snake_case` (ZooKeeper's JSON names for its config keys).
fn snake_case(key: &str) -> String {
    let mut out = String::new();
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A command's fields, from the text of the word it answers from.
fn command_json(word: FourLetterWord, answer: &str) -> Map<String, Value> {
    let mut body = Map::new();
    match word {
        FourLetterWord::Mntr => {
            for (key, value) in answer.lines().filter_map(|l| l.split_once('\t')) {
                let key = key.strip_prefix("zk_").unwrap_or(key);
                body.insert(key.to_owned(), json_value(value));
            }
        }
        FourLetterWord::Conf => {
            for (key, value) in answer.lines().filter_map(|l| l.split_once('=')) {
                if !key.starts_with("server.") {
                    body.insert(snake_case(key), json_value(value));
                }
            }
        }
        FourLetterWord::Envi => {
            for (key, value) in answer.lines().filter_map(|l| l.split_once('=')) {
                body.insert(key.to_owned(), Value::String(value.to_owned()));
            }
        }
        FourLetterWord::Dirs => {
            for (key, value) in answer.lines().filter_map(|l| l.split_once(": ")) {
                body.insert(key.to_owned(), json_value(value));
            }
        }
        FourLetterWord::Isro => {
            body.insert("read_only".into(), Value::Bool(answer.trim() == "ro"));
        }
        FourLetterWord::Wchs => {
            // "N connections watching M paths\nTotal watches:K"
            let numbers: Vec<i64> = answer
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse().ok())
                .collect();
            for (key, n) in ["num_connections", "num_paths", "num_total_watches"]
                .iter()
                .zip(numbers)
            {
                body.insert((*key).to_owned(), Value::from(n));
            }
        }
        _ => {}
    }
    body
}

/// `mntr` in Prometheus' text format, with ZooKeeper's names: each numeric value as a
/// gauge under its name without `zk_`, but a summary (`cnt_X` and `sum_X`, with `avg_X`,
/// `min_X`, `max_X`) as ZooKeeper's Prometheus provider exports one: `X_count` and
/// `X_sum` of a summary `X`.
pub fn prometheus(mntr: &str) -> String {
    let values: Vec<(&str, f64)> = mntr
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(key, value)| {
            let number = value.trim().parse::<f64>().ok()?;
            Some((key.strip_prefix("zk_").unwrap_or(key), number))
        })
        .collect();
    let summaries: Vec<&str> = values
        .iter()
        .filter_map(|(name, _)| name.strip_prefix("cnt_"))
        .collect();
    let part_of_summary = |name: &str| {
        ["avg_", "min_", "max_", "cnt_", "sum_"]
            .iter()
            .any(|prefix| {
                name.strip_prefix(prefix)
                    .is_some_and(|s| summaries.contains(&s))
            })
    };
    let value_of = |name: String| {
        values
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0.0, |(_, v)| *v)
    };
    let mut out = String::new();
    for (name, number) in &values {
        if let Some(summary) = name.strip_prefix("cnt_").filter(|s| summaries.contains(s)) {
            out.push_str(&format!(
                "# HELP {summary} {summary}\n# TYPE {summary} summary\n\
                 {summary}_count {number:?}\n{summary}_sum {:?}\n",
                value_of(format!("sum_{summary}"))
            ));
        } else if !part_of_summary(name) {
            out.push_str(&format!(
                "# HELP {name} {name}\n# TYPE {name} gauge\n{name} {number:?}\n"
            ));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MNTR: &str = "zk_version\t3.8.0-paddock\nzk_znode_count\t5\nzk_avg_latency\t0.25\n\
                        paddock_invariant_breaches\t0\nzk_avg_fsynctime\t1.5\n\
                        zk_min_fsynctime\t1\nzk_max_fsynctime\t2\nzk_cnt_fsynctime\t2\n\
                        zk_sum_fsynctime\t3\n";

    #[test]
    fn prometheus_text_has_zookeepers_names() {
        insta::assert_snapshot!(prometheus(MNTR), @r"
        # HELP znode_count znode_count
        # TYPE znode_count gauge
        znode_count 5.0
        # HELP avg_latency avg_latency
        # TYPE avg_latency gauge
        avg_latency 0.25
        # HELP paddock_invariant_breaches paddock_invariant_breaches
        # TYPE paddock_invariant_breaches gauge
        paddock_invariant_breaches 0.0
        # HELP fsynctime fsynctime
        # TYPE fsynctime summary
        fsynctime_count 2.0
        fsynctime_sum 3.0
        ");
    }

    #[test]
    fn commands_answer_as_zookeepers_json() {
        let ask: Ask = Arc::new(|word| {
            Some(match word {
                FourLetterWord::Mntr => MNTR.to_owned(),
                FourLetterWord::Conf => "clientPort=2181\ndataDir=/d\nserver.1=h:1:2\n".into(),
                FourLetterWord::Wchs => "1 connections watching 2 paths\nTotal watches:3\n".into(),
                _ => "imok".into(),
            })
        });
        let (_, _, body) = admin("/commands/mntr", "/commands", &ask);
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["command"], "monitor");
        assert_eq!(json["znode_count"], 5);
        assert_eq!(json["version"], "3.8.0-paddock");
        assert_eq!(json["error"], Value::Null);
        let (_, _, body) = admin("/commands/configuration", "/commands", &ask);
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["client_port"], 2181);
        assert_eq!(json["data_dir"], "/d");
        let (_, _, body) = admin("/commands/wchs", "/commands/", &ask);
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["num_total_watches"], 3);
        let (status, _, body) = admin("/commands/nope", "/commands", &ask);
        assert_eq!(status, "200 OK");
        assert!(body.contains("Unknown command: nope"));
        let (status, _, body) = admin("/commands", "/commands", &ask);
        assert_eq!(status, "200 OK");
        assert!(body.contains("/commands/monitor"));
        let (status, _, _) = admin("/other", "/commands", &ask);
        assert_eq!(status, "404 Not Found");
    }
}
