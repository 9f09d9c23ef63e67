//! ZooKeeper's `zoo.cfg` format, parsed into a validated [`ZooCfg`].
//!
//! The parser is a pure function of the file's text so it can be fuzzed: it never
//! panics, it reports the first bad line with its number, key and reason, and it keeps
//! a warning for every key it does not know (ZooKeeper ignores unknown keys too, so an
//! existing ensemble's config moves over unchanged). Reading `myid` and the files
//! themselves is the caller's job.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::tls::ClientAuth;

/// A parsed, validated `zoo.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooCfg {
    /// `tickTime`: the basic time unit in ms (heartbeats, session timeout bounds).
    pub tick_time_ms: u32,
    /// `initLimit`: ticks a follower may take to connect and sync to a leader.
    pub init_limit_ticks: u32,
    /// `syncLimit`: ticks a follower may lag behind the leader.
    pub sync_limit_ticks: u32,
    /// `dataDir`: snapshots (and `myid`).
    pub data_dir: String,
    /// `dataLogDir`: the transaction log; `dataDir` when absent.
    pub data_log_dir: String,
    /// `clientPort`: the plaintext client port. 2181 when absent, unless
    /// `secureClientPort` is set: then only the secure port is opened.
    pub client_port: Option<u16>,
    /// `clientPortAddress`: the address the client port binds; all interfaces when absent.
    pub client_port_address: Option<IpAddr>,
    /// `maxClientCnxns`: connections per client IP; 0 means unlimited.
    pub max_client_cnxns: u32,
    /// `maxCnxns`: open client connections in all (ZooKeeper 3.6+); 0 means unlimited.
    pub max_cnxns: u32,
    /// `nio.sessionlessCnxnTimeout` (ZooKeeper's `zookeeper.nio.sessionlessCnxnTimeout`,
    /// which zoo.cfg sets): ms a connection may stay open without a session before it
    /// is closed. Default 10000.
    pub sessionless_cnxn_timeout_ms: u32,
    /// `minSessionTimeout` in ms (default 2 × tickTime).
    pub min_session_timeout_ms: u32,
    /// `maxSessionTimeout` in ms (default 20 × tickTime).
    pub max_session_timeout_ms: u32,
    /// `server.N` entries by server id; empty for a standalone server.
    pub servers: BTreeMap<u64, ServerEntry>,
    /// `dynamicConfigFile` (ZooKeeper 3.5+): the file that holds the `server.N` lines
    /// instead of zoo.cfg (which must then hold none). `paddock` reads it with
    /// [`parse_dynamic`] and [`ZooCfg::with_dynamic`]; a path as given, as ZooKeeper takes it.
    pub dynamic_config_file: Option<String>,
    /// True when zoo.cfg sets `clientPort`; otherwise a member takes its client port (and
    /// address) from the `;[address:]port` of its own `server.N` line when it has one, as
    /// ZooKeeper 3.5+ does ([`ZooCfg::own_client_address`]).
    pub client_port_explicit: bool,
    /// `autopurge.snapRetainCount`: snapshots (and their logs) kept by the purge task (min 3).
    pub autopurge_snap_retain_count: u32,
    /// `autopurge.purgeInterval` in hours; 0 disables purging.
    pub autopurge_purge_interval_hours: u32,
    /// `4lw.commands.whitelist`: the enabled four-letter words (`*` expands to all).
    pub four_letter_words: Vec<String>,
    /// `snapCount`: transactions between snapshots.
    pub snap_count: u32,
    /// `snapSizeLimitInKb`: KiB of transactions between snapshots, whatever their count
    /// (ZooKeeper's default is 4 GiB; Paddock's 256 MiB, as its log stays in memory).
    pub snap_size_limit_kb: u64,
    /// `jute.maxbuffer`: the largest frame accepted from a client, in bytes.
    pub jute_max_buffer_bytes: u32,
    /// ZooKeeper's AdminServer (`crate::http`): `admin.serverAddress` (default `0.0.0.0`)
    /// and `admin.serverPort` (default 8080); `None` when `admin.enableServer=false`.
    pub admin_server: Option<SocketAddr>,
    /// `admin.commandURL`: where the AdminServer's commands are (default `/commands`).
    pub admin_command_url: String,
    /// The Prometheus metrics endpoint (`crate::http`), on when
    /// `metricsProvider.className` names ZooKeeper's `PrometheusMetricsProvider`:
    /// `metricsProvider.httpHost` (default `0.0.0.0`) and `metricsProvider.httpPort`
    /// (default 7000).
    pub metrics_server: Option<SocketAddr>,
    /// `globalOutstandingLimit` (ZooKeeper's `zookeeper.globalOutstandingLimit`, which
    /// zoo.cfg sets): client requests received and not yet answered, across all
    /// connections of this server, beyond which the server stops reading from the
    /// connections that have a request outstanding until the count is back at or below
    /// it. Requests are never dropped or failed for it. Default 1000.
    pub global_outstanding_limit: u32,
    /// `DigestAuthenticationProvider.superDigest` (ZooKeeper's system property
    /// `zookeeper.DigestAuthenticationProvider.superDigest`, which zoo.cfg sets, either
    /// spelling): `user:base64(sha1(user:password))`; a session that authenticates with
    /// that digest credential is the super user, whom no ACL stops.
    pub super_digest: Option<String>,
    /// `skipACL` (ZooKeeper's system property `zookeeper.skipACL`, which zoo.cfg sets,
    /// either spelling): `yes` checks no ACL at all; anything else checks them.
    pub skip_acl: bool,
    /// `paddock.peerMessageBytesMax` (Paddock's own): the most bytes of entries in one
    /// replication message, and of snapshot in one piece; a peer frame may add
    /// `PEER_MESSAGE_OVERHEAD_BYTES` to it, and a longer one closes its connection. At
    /// least what one transaction may take (1 MiB, or `jute.maxbuffer` plus 64 KiB when
    /// that is more), at most 1 GiB. Default 16 MiB. Snapshots of any size travel in
    /// pieces of this size.
    pub peer_message_bytes_max: u32,
    /// `paddock.snapshotWriteBytesPerSec` (Paddock's own): how fast a snapshot is written,
    /// in pieces of 128 KiB each synced at once; 0 writes at the disk's full speed. A log
    /// sync flushes the disk's cache and waits for every byte written before it, so a
    /// snapshot written at full speed makes each log sync wait for it (~10 ms instead of
    /// ~0.15 ms here, for as long as it is being written). Default 64 MiB/s.
    pub snapshot_write_bytes_per_sec: u32,
    /// `paddock.snapshotLogKeptBytes` (Paddock's own, like ZooKeeper's
    /// `zookeeper.commitLogCount` but in bytes): how much log a server keeps in memory
    /// behind its newest snapshot, so that a follower a little behind catches up by
    /// entries; one further behind is sent the snapshot. 0 cuts the log at the snapshot.
    /// Default 8 MiB.
    pub snapshot_log_kept_bytes: u64,
    /// `sslQuorum=true` and its stores: mutual TLS on the peer port (see `crate::tls`).
    pub quorum_tls: Option<QuorumTlsConfig>,
    /// `secureClientPort` and its stores: a TLS client port.
    pub secure_client: Option<SecureClientConfig>,
    /// SASL: the JAAS file and the sections of it clients and members authenticate with.
    pub sasl: SaslConfig,
}

/// SASL settings. The credentials live in the JAAS file (see `crate::jaas`), which
/// is read at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslConfig {
    /// `java.security.auth.login.config` (a JVM flag in ZooKeeper; zoo.cfg may set it
    /// too): the JAAS file.
    pub jaas_file: Option<PathBuf>,
    /// `zookeeper.sasl.serverconfig`: the section whose `user_NAME` entries clients
    /// authenticate against with DIGEST-MD5. Default `Server`; when the file has no such
    /// section, client SASL is not offered.
    pub server_section: String,
    /// `zookeeper.superUser`: a SASL user who is also the super user.
    pub super_user: Option<String>,
    /// `quorum.auth.*`: SASL between the members.
    pub quorum: QuorumSaslConfig,
}

/// ZooKeeper's `quorum.auth.*` keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumSaslConfig {
    /// `quorum.auth.enableSasl`: this server authenticates itself to the members it
    /// connects to, and checks those that authenticate to it.
    pub enabled: bool,
    /// `quorum.auth.learnerRequireSasl`: a member this server connects to must take
    /// part in SASL (else the connection is dropped).
    pub learner_require: bool,
    /// `quorum.auth.serverRequireSasl`: a member connecting to this server must
    /// authenticate (else the connection is refused). Without it, an unauthenticated
    /// member is still accepted (the step of a rolling change to SASL).
    pub server_require: bool,
    /// `quorum.auth.learner.saslLoginContext`: the JAAS section with the `username` and
    /// `password` this server presents. Default `QuorumLearner`.
    pub learner_section: String,
    /// `quorum.auth.server.saslLoginContext`: the JAAS section with the `user_NAME`
    /// entries this server accepts. Default `QuorumServer`.
    pub server_section: String,
}

/// ZooKeeper's secure client port keys, PEM stores only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureClientConfig {
    /// `secureClientPort`.
    pub port: u16,
    /// `secureClientPortAddress`: all interfaces when absent (ZooKeeper's default), or
    /// `clientPortAddress` when that is set.
    pub address: Option<IpAddr>,
    /// `ssl.keyStore.location`: this server's private key and certificate chain.
    pub key_store: PathBuf,
    /// `ssl.trustStore.location`: the CA certificates client certificates are checked
    /// against.
    pub trust_store: Option<PathBuf>,
    /// `ssl.clientAuth`: `need` (the default), `want` or `none`.
    pub client_auth: ClientAuth,
}

/// ZooKeeper's quorum TLS keys, PEM stores only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumTlsConfig {
    /// `ssl.quorum.keyStore.location`: this server's private key and certificate chain.
    pub key_store: PathBuf,
    /// `ssl.quorum.trustStore.location`: the CA certificates that make members.
    pub trust_store: PathBuf,
    /// `ssl.quorum.hostnameVerification` (default true): a member's certificate must be
    /// valid for the host of its `server.N` line.
    pub hostname_verification: bool,
}

/// One `server.N=host:peerPort:electionPort[:participant|:observer][;[clientHost:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    /// Host name or address the peers use.
    pub host: String,
    /// Port carrying replication traffic.
    pub peer_port: u16,
    /// Port ZooKeeper uses for leader election (Paddock elects over the peer port, but
    /// keeps the value so configs round-trip and ports stay reserved).
    pub election_port: u16,
    /// Non-voting member.
    pub observer: bool,
    /// Client address from the dynamic-config form (`;host:port`), when given.
    pub client: Option<(Option<String>, u16)>,
}

/// Every four-letter word ZooKeeper 3.8 knows, in its spelling: each may appear in the
/// whitelist (`*` enables them all). The few Paddock does not answer
/// (`four_letter::IMPLEMENTED` lists those it does) are warned about at start and answered
/// as ZooKeeper answers a word outside the whitelist.
pub const FOUR_LETTER_WORDS_ALL: &[&str] = &[
    "ruok", "srvr", "stat", "conf", "cons", "envi", "mntr", "wchs", "wchc", "wchp", "dump", "isro",
    "crst", "srst", "dirs", "gtmk", "stmk", "hash",
];

/// Enabled when `4lw.commands.whitelist` is absent. ZooKeeper enables only `srvr`; we add
/// the read-only health words that tooling and kazoo's `server_version()` need.
pub const FOUR_LETTER_WORDS_DEFAULT: &[&str] = &["srvr", "ruok", "envi", "mntr"];

/// Keys ZooKeeper knows that Paddock accepts and ignores (warned about as such).
const KEYS_IGNORED: &[&str] = &[
    "admin.idleTimeout",
    "metricsProvider.exportJvmInfo",
    "standaloneEnabled",
    "reconfigEnabled",
    "preAllocSize",
    "forceSync",
    "quorumListenOnAllIPs",
    "sslQuorumReloadCertFiles",
    "electionAlg",
    "leaderServes",
    "cnxTimeout",
    "syncEnabled",
];

/// A warning about a line that did not stop start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// 1-based line number.
    pub line: usize,
    /// What is odd about it.
    pub message: String,
}

/// Why a config was refused: the 1-based line (0 when the problem is the file as a
/// whole), the key and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {key}: {reason}")]
pub struct ConfigError {
    /// 1-based line number, or 0 for a problem spanning the file (e.g. a missing key).
    pub line: usize,
    /// The key at fault.
    pub key: String,
    /// What was wrong and what is allowed.
    pub reason: String,
}

fn error(line: usize, key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        line,
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Parses a dynamic config file (`dynamicConfigFile`, ZooKeeper 3.5+): `server.N` lines
/// in zoo.cfg's form and an optional `version=<hex>` (which Paddock does not use yet).
/// Returns the servers, or the first error (with its line in that file). Weighted or
/// grouped quorums (`weight.N`, `group.N`) are refused: they change what a quorum is.
pub fn parse_dynamic(text: &str) -> Result<BTreeMap<u64, ServerEntry>, ConfigError> {
    let mut raw = BTreeMap::new();
    let mut warnings = Vec::new();
    raw_lines(text, &mut raw, &mut warnings)?;
    for (key, (line, value)) in &raw {
        if key.starts_with("server.") {
            continue;
        }
        if key == "version" {
            u64::from_str_radix(value, 16).map_err(|_| {
                error(
                    *line,
                    key,
                    format!("{value:?} is not a hexadecimal version"),
                )
            })?;
            continue;
        }
        let reason = if key.starts_with("weight.") || key.starts_with("group.") {
            "hierarchical quorums (weights and groups) are not supported".to_owned()
        } else {
            "not a dynamic config key (server.N or version)".to_owned()
        };
        return Err(error(*line, key, reason));
    }
    let servers = servers(&raw)?;
    if servers.is_empty() {
        return Err(error(
            0,
            "server.N",
            "no server lines in the dynamic config file",
        ));
    }
    Ok(servers)
}

/// Parses `zoo.cfg` text. Lines are `key=value` (Java properties style: `#`/`!` comments,
/// blank lines, whitespace around keys and values ignored). Returns the config and
/// warnings, or the first error.
pub fn parse(text: &str) -> Result<(ZooCfg, Vec<ConfigWarning>), ConfigError> {
    parse_with_jvm_flags(text, "")
}

/// The keys ZooKeeper's operators set as JVM system properties (`-Dzookeeper.KEY=VALUE`
/// in `SERVER_JVMFLAGS` or `JVMFLAGS`, which `zkServer.sh` passes to Java) that Paddock
/// reads from there too.
pub const JVM_FLAG_KEYS: &[&str] = &[
    "zookeeper.DigestAuthenticationProvider.superDigest",
    "zookeeper.skipACL",
    JAAS_KEY,
    "zookeeper.sasl.serverconfig",
    "zookeeper.superUser",
];

/// [`parse`], with the keys of [`JVM_FLAG_KEYS`] also taken from `jvm_flags` (the
/// environment's `SERVER_JVMFLAGS` and `JVMFLAGS`, whitespace-separated `-Dkey=value`
/// words) when the file does not set them: zoo.cfg wins, as it does over ZooKeeper's
/// system properties. A problem with such a value is reported at line 0.
pub fn parse_with_jvm_flags(
    text: &str,
    jvm_flags: &str,
) -> Result<(ZooCfg, Vec<ConfigWarning>), ConfigError> {
    let mut raw: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut warnings = Vec::new();
    for word in jvm_flags.split_whitespace() {
        if let Some((key, value)) = word.strip_prefix("-D").and_then(|p| p.split_once('='))
            && JVM_FLAG_KEYS.contains(&key)
        {
            raw.insert(key.to_owned(), (0, value.to_owned()));
        }
    }
    raw_lines(text, &mut raw, &mut warnings)?;
    let cfg = build(&raw, &mut warnings)?;
    Ok((cfg, warnings))
}

/// Reads `key=value` lines into `raw` (key → line number and value), warning about a
/// repeated key (the later value wins).
fn raw_lines(
    text: &str,
    raw: &mut BTreeMap<String, (usize, String)>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<(), ConfigError> {
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        // Java properties: the key ends at the first '=' or ':'.
        let Some((key, value)) = trimmed.split_once(['=', ':']) else {
            return Err(error(number, trimmed, "expected key=value"));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(error(number, key, "empty key"));
        }
        if let Some((previous, _)) = raw.get(key).filter(|(line, _)| *line > 0) {
            warnings.push(ConfigWarning {
                line: number,
                message: format!("{key} repeats line {previous}; the later value wins"),
            });
        }
        raw.insert(key.to_owned(), (number, value.to_owned()));
    }
    Ok(())
}

fn number<T: std::str::FromStr>(
    raw: &BTreeMap<String, (usize, String)>,
    key: &str,
    default: Option<T>,
    what: &str,
) -> Result<T, ConfigError> {
    match raw.get(key) {
        Some((line, value)) => value
            .parse()
            .map_err(|_| error(*line, key, format!("{value:?} is not {what}"))),
        None => default.ok_or_else(|| error(0, key, "missing (required)")),
    }
}

fn build(
    raw: &BTreeMap<String, (usize, String)>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<ZooCfg, ConfigError> {
    let tick_time_ms: u32 = number(raw, "tickTime", Some(3000), "a tick length in ms")?;
    if tick_time_ms == 0 {
        return Err(error(
            line_of(raw, "tickTime"),
            "tickTime",
            "must be at least 1 ms",
        ));
    }
    let data_dir = raw
        .get("dataDir")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| error(0, "dataDir", "missing (required)"))?;
    if data_dir.is_empty() {
        return Err(error(
            line_of(raw, "dataDir"),
            "dataDir",
            "must not be empty",
        ));
    }
    let data_log_dir = raw
        .get("dataLogDir")
        .map_or_else(|| data_dir.clone(), |(_, v)| v.clone());
    let min_default = tick_time_ms.saturating_mul(2);
    let max_default = tick_time_ms.saturating_mul(20);
    let min_session_timeout_ms = number(raw, "minSessionTimeout", Some(min_default), "ms")?;
    let max_session_timeout_ms = number(raw, "maxSessionTimeout", Some(max_default), "ms")?;
    if min_session_timeout_ms > max_session_timeout_ms {
        return Err(error(
            line_of(raw, "minSessionTimeout").max(line_of(raw, "maxSessionTimeout")),
            "minSessionTimeout",
            format!(
                "{min_session_timeout_ms} ms is above maxSessionTimeout {max_session_timeout_ms} ms"
            ),
        ));
    }
    let client_port_address = match raw.get("clientPortAddress") {
        Some((line, v)) => Some(bind_address(v).map_err(|e| error(*line, "clientPortAddress", e))?),
        None => None,
    };
    let jute_max_buffer_bytes: u32 = number(raw, "jute.maxbuffer", Some(0xf_ffff), "a byte count")?;
    if jute_max_buffer_bytes < 1024 {
        return Err(error(
            line_of(raw, "jute.maxbuffer"),
            "jute.maxbuffer",
            "must be >= 1024",
        ));
    }
    let autopurge_snap_retain_count: u32 =
        number(raw, "autopurge.snapRetainCount", Some(3), "a count")?;
    if autopurge_snap_retain_count < 3 {
        warnings.push(ConfigWarning {
            line: line_of(raw, "autopurge.snapRetainCount"),
            message: "autopurge.snapRetainCount below 3 is raised to 3 (as ZooKeeper does)".into(),
        });
    }
    let four_letter_words = four_letter_words(raw)?;
    let unanswered: Vec<&str> = four_letter_words
        .iter()
        .map(String::as_str)
        .filter(|word| {
            !crate::four_letter::IMPLEMENTED
                .iter()
                .any(|w| w.as_str() == *word)
        })
        .collect();
    // Words listed by name (not through `*`) that will not be answered.
    let listed = raw
        .get("4lw.commands.whitelist")
        .is_some_and(|(_, value)| !value.split(',').any(|w| w.trim() == "*"));
    if listed && !unanswered.is_empty() {
        warnings.push(ConfigWarning {
            line: line_of(raw, "4lw.commands.whitelist"),
            message: format!(
                "4lw.commands.whitelist: Paddock does not answer {} yet; they are answered \
                 as words outside the whitelist",
                unanswered.join(", ")
            ),
        });
    }
    let dynamic_config_file = raw.get("dynamicConfigFile").map(|(_, v)| v.clone());
    if dynamic_config_file.is_some()
        && let Some(key) = raw.keys().find(|key| key.starts_with("server."))
    {
        return Err(error(
            line_of(raw, key),
            key,
            "must be in the dynamic config file, as dynamicConfigFile is set (ZooKeeper \
             requires the same)",
        ));
    }
    let servers = servers(raw)?;
    let cfg = ZooCfg {
        tick_time_ms,
        init_limit_ticks: number(raw, "initLimit", Some(10), "a tick count")?,
        sync_limit_ticks: number(raw, "syncLimit", Some(5), "a tick count")?,
        data_dir,
        data_log_dir,
        client_port: match raw.contains_key("clientPort") || !raw.contains_key("secureClientPort") {
            true => Some(number(
                raw,
                "clientPort",
                Some(2181),
                "a TCP port (0-65535)",
            )?),
            false => None,
        },
        client_port_address,
        max_client_cnxns: number(raw, "maxClientCnxns", Some(60), "a connection count")?,
        max_cnxns: number(raw, "maxCnxns", Some(0), "a connection count")?,
        sessionless_cnxn_timeout_ms: number(
            raw,
            "nio.sessionlessCnxnTimeout",
            Some(10_000),
            "milliseconds",
        )?,
        min_session_timeout_ms,
        max_session_timeout_ms,
        servers,
        dynamic_config_file,
        client_port_explicit: raw.contains_key("clientPort"),
        autopurge_snap_retain_count: autopurge_snap_retain_count.max(3),
        autopurge_purge_interval_hours: number(raw, "autopurge.purgeInterval", Some(0), "hours")?,
        four_letter_words,
        snap_count: number(raw, "snapCount", Some(100_000), "a transaction count")?,
        snap_size_limit_kb: number(raw, "snapSizeLimitInKb", Some(256 * 1024), "KiB")?,
        jute_max_buffer_bytes,
        admin_server: admin_server(raw)?,
        admin_command_url: raw
            .get("admin.commandURL")
            .map_or_else(|| "/commands".to_owned(), |(_, v)| v.clone()),
        metrics_server: metrics_server(raw, warnings)?,
        global_outstanding_limit: number(
            raw,
            "globalOutstandingLimit",
            Some(1000),
            "a request count (0 or more)",
        )?,
        super_digest: super_digest(raw)?,
        skip_acl: skip_acl(raw, warnings),
        peer_message_bytes_max: peer_message_bytes_max(raw, jute_max_buffer_bytes)?,
        snapshot_write_bytes_per_sec: number(
            raw,
            "paddock.snapshotWriteBytesPerSec",
            Some(SNAPSHOT_WRITE_BYTES_PER_SEC_DEFAULT),
            "a byte count per second (0: unpaced)",
        )?,
        snapshot_log_kept_bytes: number(
            raw,
            "paddock.snapshotLogKeptBytes",
            Some(SNAPSHOT_LOG_KEPT_BYTES_DEFAULT),
            "a byte count",
        )?,
        quorum_tls: quorum_tls(raw, warnings)?,
        secure_client: secure_client(raw, warnings)?,
        sasl: sasl(raw)?,
    };
    security_unsupported(raw)?;
    warn_unknown(raw, warnings);
    Ok(cfg)
}

/// `admin.*`: the AdminServer's address, `None` when it is off.
fn admin_server(
    raw: &BTreeMap<String, (usize, String)>,
) -> Result<Option<SocketAddr>, ConfigError> {
    if !boolean(raw, "admin.enableServer", true)? {
        return Ok(None);
    }
    let ip = match raw.get("admin.serverAddress") {
        Some((line, value)) => {
            bind_address(value).map_err(|reason| error(*line, "admin.serverAddress", reason))?
        }
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    let port = number(raw, "admin.serverPort", Some(8080), "a TCP port (0-65535)")?;
    Ok(Some(SocketAddr::new(ip, port)))
}

/// The class ZooKeeper's Prometheus metrics provider has.
const PROMETHEUS_PROVIDER: &str = "PrometheusMetricsProvider";

/// `metricsProvider.*`: the metrics endpoint's address, when the Prometheus provider is
/// named; another provider is warned about (Paddock has only this one).
fn metrics_server(
    raw: &BTreeMap<String, (usize, String)>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Option<SocketAddr>, ConfigError> {
    let Some((line, class)) = raw.get("metricsProvider.className") else {
        return Ok(None);
    };
    if !class.ends_with(PROMETHEUS_PROVIDER) {
        if !class.ends_with("NullMetricsProvider") {
            warnings.push(ConfigWarning {
                line: *line,
                message: format!(
                    "metricsProvider.className: {class} is not supported (Paddock serves                      Prometheus metrics with org.apache.zookeeper.metrics.prometheus.\
                     PrometheusMetricsProvider); no metrics endpoint"
                ),
            });
        }
        return Ok(None);
    }
    let ip = match raw.get("metricsProvider.httpHost") {
        Some((line, value)) => bind_address(value)
            .map_err(|reason| error(*line, "metricsProvider.httpHost", reason))?,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    let port = number(
        raw,
        "metricsProvider.httpPort",
        Some(7000),
        "a TCP port (0-65535)",
    )?;
    Ok(Some(SocketAddr::new(ip, port)))
}

/// Default `paddock.snapshotWriteBytesPerSec`: 64 MiB/s.
pub const SNAPSHOT_WRITE_BYTES_PER_SEC_DEFAULT: u32 = 64 << 20;

/// Default `paddock.snapshotLogKeptBytes`: 8 MiB.
pub const SNAPSHOT_LOG_KEPT_BYTES_DEFAULT: u64 = 8 << 20;

/// Largest `paddock.peerMessageBytesMax`.
const PEER_MESSAGE_BYTES_MAX_LIMIT: u32 = 1 << 30;

fn peer_message_bytes_max(
    raw: &BTreeMap<String, (usize, String)>,
    jute_max_buffer_bytes: u32,
) -> Result<u32, ConfigError> {
    const KEY: &str = "paddock.peerMessageBytesMax";
    let default =
        u32::try_from(paddock_core::replication::MESSAGE_BYTES_MAX_DEFAULT).unwrap_or(u32::MAX);
    let value: u32 = number(raw, KEY, Some(default), "a byte count")?;
    let least = jute_max_buffer_bytes
        .saturating_add(paddock_core::limits::RECORD_TXN_OVERHEAD_BYTES)
        .max(1 << 20);
    if !(least..=PEER_MESSAGE_BYTES_MAX_LIMIT).contains(&value) {
        return Err(error(
            line_of(raw, KEY),
            KEY,
            format!(
                "{value} is out of range: at least {least} (one transaction of jute.maxbuffer \
                 with its overhead, or 1 MiB) and at most {PEER_MESSAGE_BYTES_MAX_LIMIT}"
            ),
        ));
    }
    Ok(value)
}

/// Spellings of the super digest key (with and without ZooKeeper's `zookeeper.` prefix).
const SUPER_DIGEST_KEYS: [&str; 2] = [
    "DigestAuthenticationProvider.superDigest",
    "zookeeper.DigestAuthenticationProvider.superDigest",
];

fn super_digest(raw: &BTreeMap<String, (usize, String)>) -> Result<Option<String>, ConfigError> {
    let Some((key, (line, value))) = SUPER_DIGEST_KEYS
        .iter()
        .find_map(|key| raw.get(*key).map(|found| (*key, found)))
    else {
        return Ok(None);
    };
    match value.split_once(':') {
        Some((user, hash)) if !user.is_empty() && !hash.is_empty() => Ok(Some(value.clone())),
        _ => Err(ConfigError {
            line: *line,
            key: key.to_owned(),
            reason: format!(
                "{value:?} is not user:base64(sha1(user:password)) (as ZooKeeper's \
                 DigestAuthenticationProvider generates)"
            ),
        }),
    }
}

/// A Java-style boolean key (`true`/`false`, any case), `default` when absent.
fn boolean(
    raw: &BTreeMap<String, (usize, String)>,
    key: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match raw.get(key) {
        None => Ok(default),
        Some((_, value)) if value.eq_ignore_ascii_case("true") => Ok(true),
        Some((_, value)) if value.eq_ignore_ascii_case("false") => Ok(false),
        Some((line, value)) => Err(error(*line, key, format!("{value:?} is not true or false"))),
    }
}

/// ZooKeeper's quorum TLS keys that Paddock reads; the other `ssl.quorum.*` keys are
/// warned about as ignored.
const QUORUM_TLS_KEYS: &[&str] = &[
    "sslQuorum",
    "ssl.quorum.keyStore.location",
    "ssl.quorum.keyStore.type",
    "ssl.quorum.keyStore.password",
    "ssl.quorum.trustStore.location",
    "ssl.quorum.trustStore.type",
    "ssl.quorum.trustStore.password",
    "ssl.quorum.hostnameVerification",
];

/// A PEM store's path from `{prefix}.{which}.location`: `None` when absent, refused when
/// its type is not PEM (by `{prefix}.{which}.type` or the file's extension); a password
/// for it is warned about as unused.
fn pem_store(
    raw: &BTreeMap<String, (usize, String)>,
    warnings: &mut Vec<ConfigWarning>,
    prefix: &str,
    which: &str,
) -> Result<Option<PathBuf>, ConfigError> {
    let location = format!("{prefix}.{which}.location");
    let Some((_, path)) = raw.get(&location).filter(|(_, v)| !v.is_empty()) else {
        return Ok(None);
    };
    let kind = format!("{prefix}.{which}.type");
    let pem_only = |line: usize, what: &str| {
        error(
            line,
            &kind,
            format!(
                "{what}: only PEM stores are supported (convert a JKS or PKCS#12 store \
                 with keytool and openssl)"
            ),
        )
    };
    match raw.get(&kind) {
        Some((_, value)) if value.eq_ignore_ascii_case("PEM") => {}
        Some((line, value)) => return Err(pem_only(*line, value)),
        None => {
            let lower = path.to_ascii_lowercase();
            if [".jks", ".p12", ".pfx", ".bcfks"]
                .iter()
                .any(|ext| lower.ends_with(ext))
            {
                return Err(pem_only(line_of(raw, &location), path));
            }
        }
    }
    let password = format!("{prefix}.{which}.password");
    if let Some((line, value)) = raw.get(&password)
        && !value.is_empty()
    {
        warnings.push(ConfigWarning {
            line: *line,
            message: format!(
                "{password} is not used: PEM keys must not be encrypted, and PEM \
                 certificates need no password"
            ),
        });
    }
    Ok(Some(PathBuf::from(path)))
}

/// Warns about the keys under `prefix.` that are not in `read`.
fn warn_unsupported_tls_keys(
    raw: &BTreeMap<String, (usize, String)>,
    warnings: &mut Vec<ConfigWarning>,
    prefix: &str,
    read: &[&str],
) {
    for (key, (line, _)) in raw {
        let under = key
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.') && !rest.starts_with(".quorum."));
        if under && !read.contains(&key.as_str()) {
            warnings.push(ConfigWarning {
                line: *line,
                message: format!(
                    "{key} is not supported; ignored (rustls's safe defaults: TLS 1.2 and \
                     1.3, its own cipher suites)"
                ),
            });
        }
    }
}

fn quorum_tls(
    raw: &BTreeMap<String, (usize, String)>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Option<QuorumTlsConfig>, ConfigError> {
    const KEY: &str = "sslQuorum";
    if !boolean(raw, KEY, false)? {
        for (key, (line, _)) in raw {
            if key.starts_with("ssl.quorum.") {
                warnings.push(ConfigWarning {
                    line: *line,
                    message: format!("{key} has no effect without sslQuorum=true"),
                });
            }
        }
        return Ok(None);
    }
    let mut store = |which: &str| -> Result<PathBuf, ConfigError> {
        pem_store(raw, warnings, "ssl.quorum", which)?.ok_or_else(|| {
            error(
                line_of(raw, KEY),
                &format!("ssl.quorum.{which}.location"),
                "missing: sslQuorum=true needs a PEM key store and trust store",
            )
        })
    };
    let tls = QuorumTlsConfig {
        key_store: store("keyStore")?,
        trust_store: store("trustStore")?,
        hostname_verification: boolean(raw, "ssl.quorum.hostnameVerification", true)?,
    };
    warn_unsupported_tls_keys(raw, warnings, "ssl.quorum", QUORUM_TLS_KEYS);
    Ok(Some(tls))
}

/// ZooKeeper's client TLS keys that Paddock reads; the other `ssl.*` keys are warned
/// about as ignored.
const CLIENT_TLS_KEYS: &[&str] = &[
    "ssl.keyStore.location",
    "ssl.keyStore.type",
    "ssl.keyStore.password",
    "ssl.trustStore.location",
    "ssl.trustStore.type",
    "ssl.trustStore.password",
    "ssl.clientAuth",
];

fn secure_client(
    raw: &BTreeMap<String, (usize, String)>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Option<SecureClientConfig>, ConfigError> {
    const KEY: &str = "secureClientPort";
    if !raw.contains_key(KEY) {
        for (key, (line, _)) in raw {
            let client_tls = key.starts_with("ssl.") && !key.starts_with("ssl.quorum.");
            if client_tls || key == "secureClientPortAddress" {
                warnings.push(ConfigWarning {
                    line: *line,
                    message: format!("{key} has no effect without secureClientPort"),
                });
            }
        }
        return Ok(None);
    }
    let port: u16 = number(raw, KEY, None, "a TCP port (0-65535)")?;
    let address = match raw.get("secureClientPortAddress") {
        Some((line, v)) => {
            Some(bind_address(v).map_err(|e| error(*line, "secureClientPortAddress", e))?)
        }
        None => None,
    };
    let key_store = pem_store(raw, warnings, "ssl", "keyStore")?.ok_or_else(|| {
        error(
            line_of(raw, KEY),
            "ssl.keyStore.location",
            "missing: secureClientPort needs a PEM key store",
        )
    })?;
    let trust_store = pem_store(raw, warnings, "ssl", "trustStore")?;
    let client_auth = match raw.get("ssl.clientAuth") {
        None => ClientAuth::Need,
        Some((_, v)) if v.eq_ignore_ascii_case("need") => ClientAuth::Need,
        Some((_, v)) if v.eq_ignore_ascii_case("want") => ClientAuth::Want,
        Some((_, v)) if v.eq_ignore_ascii_case("none") => ClientAuth::None,
        Some((line, v)) => {
            return Err(error(
                *line,
                "ssl.clientAuth",
                format!("{v:?} is not need, want or none"),
            ));
        }
    };
    if client_auth != ClientAuth::None && trust_store.is_none() {
        return Err(error(
            line_of(raw, "ssl.clientAuth").max(line_of(raw, KEY)),
            "ssl.trustStore.location",
            "missing: client certificates are asked for (ssl.clientAuth is need by default) \
             and are checked against it; set it, or ssl.clientAuth=none",
        ));
    }
    warn_unsupported_tls_keys(raw, warnings, "ssl", CLIENT_TLS_KEYS);
    Ok(Some(SecureClientConfig {
        port,
        address,
        key_store,
        trust_store,
        client_auth,
    }))
}

/// The SASL keys: the JAAS file and the sections used (ZooKeeper's defaults), and the
/// quorum switches, whose `*RequireSasl` need `enableSasl` (as ZooKeeper checks).
fn sasl(raw: &BTreeMap<String, (usize, String)>) -> Result<SaslConfig, ConfigError> {
    let text = |key: &str, default: &str| {
        raw.get(key)
            .map_or_else(|| default.to_owned(), |(_, v)| v.clone())
    };
    let enabled = boolean(raw, "quorum.auth.enableSasl", false)?;
    let learner_require = boolean(raw, "quorum.auth.learnerRequireSasl", false)?;
    let server_require = boolean(raw, "quorum.auth.serverRequireSasl", false)?;
    for (key, on) in [
        ("quorum.auth.learnerRequireSasl", learner_require),
        ("quorum.auth.serverRequireSasl", server_require),
    ] {
        if on && !enabled {
            return Err(error(
                line_of(raw, key),
                key,
                "needs quorum.auth.enableSasl=true",
            ));
        }
    }
    let jaas_file = raw
        .get(JAAS_KEY)
        .filter(|(_, v)| !v.is_empty())
        .map(|(_, v)| PathBuf::from(v));
    if enabled && jaas_file.is_none() {
        return Err(error(
            line_of(raw, "quorum.auth.enableSasl"),
            "quorum.auth.enableSasl",
            format!(
                "needs a JAAS file with the members' credentials (-D{JAAS_KEY}=FILE in \
                 SERVER_JVMFLAGS)"
            ),
        ));
    }
    Ok(SaslConfig {
        jaas_file,
        server_section: text("zookeeper.sasl.serverconfig", "Server"),
        super_user: raw
            .get("zookeeper.superUser")
            .filter(|(_, v)| !v.is_empty())
            .map(|(_, v)| v.clone()),
        quorum: QuorumSaslConfig {
            enabled,
            learner_require,
            server_require,
            learner_section: text("quorum.auth.learner.saslLoginContext", "QuorumLearner"),
            server_section: text("quorum.auth.server.saslLoginContext", "QuorumServer"),
        },
    })
}

/// Security settings ZooKeeper knows and this build does not implement: refused rather
/// than ignored, since a server started without them would let in the clients the
/// operator meant to keep out.
fn security_unsupported(raw: &BTreeMap<String, (usize, String)>) -> Result<(), ConfigError> {
    for key in [
        "enforce.auth.enabled",
        "zookeeper.enforce.auth.enabled",
        "sessionRequireClientSASLAuth",
        "zookeeper.sessionRequireClientSASLAuth",
    ] {
        if boolean(raw, key, false)? {
            return Err(error(
                line_of(raw, key),
                key,
                "sessions that must authenticate before any request are not supported by \
                 this build; protect the znodes with ACLs instead",
            ));
        }
    }
    // Not security, but a limit the operator relies on: writes past a quota would succeed.
    for key in ["enforceQuota", "zookeeper.enforceQuota"] {
        if boolean(raw, key, false)? {
            return Err(error(
                line_of(raw, key),
                key,
                "quota enforcement is not supported by this build (writes past a quota \
                 would succeed); remove the key to run with quotas recorded but not enforced",
            ));
        }
    }
    Ok(())
}

/// The JVM flag naming the JAAS file.
pub const JAAS_KEY: &str = "java.security.auth.login.config";

/// `skipACL`: ZooKeeper skips ACLs only for exactly `yes`; another value than `no` is
/// probably meant as yes, so it is warned about.
fn skip_acl(raw: &BTreeMap<String, (usize, String)>, warnings: &mut Vec<ConfigWarning>) -> bool {
    let Some((key, (line, value))) = ["skipACL", "zookeeper.skipACL"]
        .iter()
        .find_map(|key| raw.get(*key).map(|found| (*key, found)))
    else {
        return false;
    };
    match value.as_str() {
        "yes" => true,
        "no" => false,
        other => {
            warnings.push(ConfigWarning {
                line: *line,
                message: format!(
                    "{key}={other} is not \"yes\": ACLs are checked (as ZooKeeper does)"
                ),
            });
            false
        }
    }
}

/// The address a client port binds: an IP address (`[::1]` as well as `::1`), or a host
/// name resolved now, as ZooKeeper resolves it at start (its first address).
fn bind_address(value: &str) -> Result<IpAddr, String> {
    let host = value.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    use std::net::ToSocketAddrs as _;
    (host, 0)
        .to_socket_addrs()
        .map_err(|e| {
            format!("{value:?} is neither an IP address nor a host name that resolves: {e}")
        })?
        .next()
        .map(|addr| addr.ip())
        .ok_or_else(|| format!("host name {value:?} resolves to no address"))
}

fn line_of(raw: &BTreeMap<String, (usize, String)>, key: &str) -> usize {
    raw.get(key).map_or(0, |(line, _)| *line)
}

const KEYS_KNOWN: &[&str] = &[
    "tickTime",
    "dynamicConfigFile",
    "initLimit",
    "syncLimit",
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "maxClientCnxns",
    "maxCnxns",
    "nio.sessionlessCnxnTimeout",
    "minSessionTimeout",
    "maxSessionTimeout",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "4lw.commands.whitelist",
    "snapCount",
    "snapSizeLimitInKb",
    "jute.maxbuffer",
    "globalOutstandingLimit",
    "DigestAuthenticationProvider.superDigest",
    "zookeeper.DigestAuthenticationProvider.superDigest",
    "skipACL",
    "zookeeper.skipACL",
    "paddock.peerMessageBytesMax",
    "paddock.snapshotWriteBytesPerSec",
    "paddock.snapshotLogKeptBytes",
    "quorum.auth.enableSasl",
    "quorum.auth.learnerRequireSasl",
    "quorum.auth.serverRequireSasl",
    "quorum.auth.learner.saslLoginContext",
    "quorum.auth.server.saslLoginContext",
    JAAS_KEY,
    "zookeeper.sasl.serverconfig",
    "zookeeper.superUser",
    "enforce.auth.enabled",
    "zookeeper.enforce.auth.enabled",
    "enforce.auth.schemes",
    "zookeeper.enforce.auth.schemes",
    "sessionRequireClientSASLAuth",
    "zookeeper.sessionRequireClientSASLAuth",
    "enforceQuota",
    "zookeeper.enforceQuota",
    "admin.enableServer",
    "admin.serverAddress",
    "admin.serverPort",
    "admin.commandURL",
    "metricsProvider.className",
    "metricsProvider.httpHost",
    "metricsProvider.httpPort",
];

/// ZooKeeper's own authentication providers: naming one in `authProvider.N` changes
/// nothing, since Paddock has them all.
const AUTH_PROVIDERS_BUILT_IN: &[&str] = &[
    "SASLAuthenticationProvider",
    "X509AuthenticationProvider",
    "DigestAuthenticationProvider",
    "IPAuthenticationProvider",
];

fn warn_unknown(raw: &BTreeMap<String, (usize, String)>, warnings: &mut Vec<ConfigWarning>) {
    for (key, (line, _)) in raw {
        if KEYS_KNOWN.contains(&key.as_str())
            || key.starts_with("server.")
            || key.starts_with("ssl.")
            || key == "sslQuorum"
            || key == "secureClientPort"
            || key == "secureClientPortAddress"
        {
            continue;
        }
        if key.starts_with("authProvider.") || key.starts_with("zookeeper.authProvider.") {
            let value = raw.get(key).map_or("", |(_, v)| v.as_str());
            if !AUTH_PROVIDERS_BUILT_IN.iter().any(|p| value.ends_with(p)) {
                warnings.push(ConfigWarning {
                    line: *line,
                    message: format!(
                        "{key}: custom authentication providers are not supported ({value}); \
                         ignored (built in: digest, ip, x509, sasl)"
                    ),
                });
            }
            continue;
        }
        let message = if KEYS_IGNORED.contains(&key.as_str()) {
            format!("{key} is a ZooKeeper setting Paddock does not use; ignored")
        } else {
            format!("unknown key {key}; ignored")
        };
        warnings.push(ConfigWarning {
            line: *line,
            message,
        });
    }
    warnings.sort_by_key(|w| w.line);
}

fn four_letter_words(raw: &BTreeMap<String, (usize, String)>) -> Result<Vec<String>, ConfigError> {
    let Some((line, value)) = raw.get("4lw.commands.whitelist") else {
        return Ok(FOUR_LETTER_WORDS_DEFAULT
            .iter()
            .map(|w| (*w).to_owned())
            .collect());
    };
    let mut words = Vec::new();
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        if word == "*" {
            return Ok(FOUR_LETTER_WORDS_ALL
                .iter()
                .map(|w| (*w).to_owned())
                .collect());
        }
        if !FOUR_LETTER_WORDS_ALL.contains(&word) {
            return Err(error(
                *line,
                "4lw.commands.whitelist",
                format!("{word:?} is not a four-letter word ZooKeeper knows"),
            ));
        }
        if !words.iter().any(|w| w == word) {
            words.push(word.to_owned());
        }
    }
    Ok(words)
}

fn servers(
    raw: &BTreeMap<String, (usize, String)>,
) -> Result<BTreeMap<u64, ServerEntry>, ConfigError> {
    let mut servers = BTreeMap::new();
    for (key, (line, value)) in raw.range("server.".to_owned()..) {
        let Some(id_text) = key.strip_prefix("server.") else {
            break;
        };
        let id: u64 = id_text
            .parse()
            .ok()
            .filter(|id| (1..=255).contains(id))
            .ok_or_else(|| error(*line, key, "server id must be a number from 1 to 255"))?;
        servers.insert(id, server_entry(*line, key, value)?);
    }
    let mut seen = BTreeMap::new();
    for (id, entry) in &servers {
        for port in [entry.peer_port, entry.election_port] {
            if let Some(other) = seen.insert((entry.host.clone(), port), *id) {
                let line = line_of(raw, &format!("server.{id}"));
                let reason = format!("{}:{port} is also used by server.{other}", entry.host);
                return Err(error(line, &format!("server.{id}"), reason));
            }
        }
    }
    Ok(servers)
}

fn port(line: usize, key: &str, text: &str) -> Result<u16, ConfigError> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| error(line, key, format!("{text:?} is not a TCP port (1-65535)")))
}

fn server_entry(line: usize, key: &str, value: &str) -> Result<ServerEntry, ConfigError> {
    let (quorum, client) = match value.split_once(';') {
        Some((q, c)) => (q, Some(c)),
        None => (value, None),
    };
    // An IPv6 host is bracketed (`[::1]:2888:3888`), as ZooKeeper writes it.
    let (bracketed, quorum) = match quorum.trim().strip_prefix('[') {
        Some(rest) => match rest.split_once("]:") {
            Some((host, rest)) => (Some(host), rest),
            None => return Err(error(line, key, "unclosed [ in the host")),
        },
        None => (None, quorum),
    };
    let mut parts: Vec<&str> = quorum.split(':').collect();
    if let Some(host) = bracketed {
        parts.insert(0, host);
    }
    let (host, peer, election, role) = match parts.as_slice() {
        [h, p, e] => (*h, *p, *e, None),
        [h, p, e, r] => (*h, *p, *e, Some(*r)),
        _ => {
            return Err(error(
                line,
                key,
                "expected host:peerPort:electionPort[:observer]",
            ));
        }
    };
    let host = host.trim();
    if host.is_empty() {
        return Err(error(line, key, "empty host"));
    }
    let observer = match role.map(str::trim) {
        None | Some("participant") => false,
        Some("observer") => true,
        Some(other) => {
            return Err(error(
                line,
                key,
                format!("role {other:?} is not participant or observer"),
            ));
        }
    };
    let client = match client.map(str::trim) {
        None | Some("") => None,
        Some(c) => Some(match c.rsplit_once(':') {
            Some((h, p)) => (Some(h.to_owned()), port(line, key, p)?),
            None => (None, port(line, key, c)?),
        }),
    };
    Ok(ServerEntry {
        host: host.to_owned(),
        peer_port: port(line, key, peer)?,
        election_port: port(line, key, election)?,
        observer,
        client,
    })
}

impl ServerEntry {
    /// `host:port` for a socket address, IPv6 hosts bracketed (`[::1]:2888`).
    pub fn host_port(&self, port: u16) -> String {
        if self.host.contains(':') {
            format!("[{}]:{port}", self.host)
        } else {
            format!("{}:{port}", self.host)
        }
    }
}

impl ZooCfg {
    /// This config with the servers of its dynamic config file.
    pub fn with_dynamic(mut self, servers: BTreeMap<u64, ServerEntry>) -> ZooCfg {
        self.servers = servers;
        self
    }

    /// Member `id`'s client port and address: zoo.cfg's `clientPort` (and
    /// `clientPortAddress`), or, when zoo.cfg sets no `clientPort`, the `;[address:]port`
    /// of its own `server.N` line, as ZooKeeper 3.5+ takes it. Refused: a `clientPort`
    /// that the server line contradicts, or a server-line address that does not resolve.
    pub fn own_client_address(&self, id: u64) -> Result<(Option<u16>, Option<IpAddr>), String> {
        let own = self.servers.get(&id).and_then(|s| s.client.as_ref());
        let Some((address, port)) = own else {
            return Ok((self.client_port, self.client_port_address));
        };
        if self.client_port_explicit {
            if self.client_port != Some(*port) {
                return Err(format!(
                    "clientPort {} and server.{id}'s client port {port} differ; set one",
                    self.client_port
                        .map_or("(none)".to_owned(), |p| p.to_string())
                ));
            }
            return Ok((self.client_port, self.client_port_address));
        }
        let address = match address {
            None => self.client_port_address,
            Some(host) => {
                let ip =
                    bind_address(host).map_err(|e| format!("server.{id}'s client address: {e}"))?;
                (!ip.is_unspecified()).then_some(ip)
            }
        };
        Ok((Some(*port), address))
    }

    /// The config of `paddock serve` with no arguments: standalone on 127.0.0.1:2181,
    /// data in `./paddock-data`.
    pub fn standalone_default() -> ZooCfg {
        let text = "tickTime=2000\ndataDir=./paddock-data\nclientPort=2181\n";
        let (mut cfg, _) = parse(text).expect("the built-in default config is valid");
        cfg.client_port_address = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        // Loopback only, as the client port.
        cfg.admin_server = Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080));
        cfg
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // A typical ensemble config parses with ZooKeeper's defaults filled in.
    #[test]
    fn ensemble_config() {
        let text = "# sample\ntickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/var/zk\n\
                    clientPort=2181\nserver.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888\n\
                    server.3=127.0.0.3:2888:3888:observer;2183\n";
        let (cfg, warnings) = parse(text).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.tick_time_ms, 2000);
        assert_eq!(cfg.min_session_timeout_ms, 4000);
        assert_eq!(cfg.max_session_timeout_ms, 40000);
        assert_eq!(cfg.data_log_dir, "/var/zk");
        assert_eq!(cfg.servers.len(), 3);
        assert!(cfg.servers[&3].observer);
        assert_eq!(cfg.servers[&3].client, Some((None, 2183)));
        assert_eq!(cfg.four_letter_words, FOUR_LETTER_WORDS_DEFAULT);
        assert_eq!(cfg.jute_max_buffer_bytes, 1_048_575);
    }

    // A bad value names its line, key and reason.
    #[test]
    fn bad_value_names_line() {
        let err = parse("dataDir=/d\nclientPort=http\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(err.key, "clientPort");
        assert_eq!(
            err.to_string(),
            "line 2: clientPort: \"http\" is not a TCP port (0-65535)"
        );
        let err = parse("dataDir=/d\nserver.1=a:1\n").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (2, "server.1"));
        let err = parse("dataDir=/d\nserver.300=a:1:2\n").unwrap_err();
        assert!(err.reason.contains("1 to 255"), "{err}");
        let err = parse("dataDir=/d\nminSessionTimeout=9000\nmaxSessionTimeout=100\n").unwrap_err();
        assert_eq!(err.key, "minSessionTimeout");
        let err = parse("clientPort=1\n").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (0, "dataDir"));
        let err = parse("dataDir=/d\njust words\n").unwrap_err();
        assert_eq!(err.line, 2);
        let err = parse("dataDir=/d\n4lw.commands.whitelist=ruok, nope\n").unwrap_err();
        assert_eq!(err.key, "4lw.commands.whitelist");
        // Every word ZooKeeper knows is accepted; those Paddock does not answer are
        // named in a warning.
        let (cfg, warnings) =
            parse("dataDir=/d\n4lw.commands.whitelist=ruok, hash, isro, stmk\n").unwrap();
        assert_eq!(cfg.four_letter_words, ["ruok", "hash", "isro", "stmk"]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].line, 2);
        assert!(
            warnings[0]
                .message
                .contains("does not answer hash, stmk yet"),
            "{warnings:?}"
        );
        let err = parse("dataDir=/d\nserver.1=h:2888:3888\nserver.2=h:3888:4000\n").unwrap_err();
        assert!(err.reason.contains("also used by server.1"), "{err}");
    }

    // Unknown and ignored keys are warnings, not errors.
    #[test]
    fn unknown_keys_warn() {
        let (cfg, warnings) =
            parse("dataDir=/d\nfancyKey=1\npreAllocSize=1\n4lw.commands.whitelist=*\n").unwrap();
        assert_eq!(warnings.len(), 2);
        assert_eq!(warnings[0].line, 2);
        assert!(warnings[0].message.contains("unknown key fancyKey"));
        assert!(warnings[1].message.contains("does not use"));
        assert_eq!(cfg.four_letter_words.len(), FOUR_LETTER_WORDS_ALL.len());
    }

    // The super digest is read under both of ZooKeeper's spellings; a value that is not
    // user:hash stops start-up naming its line.
    #[test]
    fn super_digest() {
        let (cfg, _) = parse("dataDir=/d\n").unwrap();
        assert_eq!(cfg.super_digest, None);
        for key in SUPER_DIGEST_KEYS {
            let text = format!("dataDir=/d\n{key}=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n");
            let (cfg, warnings) = parse(&text).unwrap();
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(
                cfg.super_digest.as_deref(),
                Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
            );
        }
        let err =
            parse("dataDir=/d\nDigestAuthenticationProvider.superDigest=nocolon\n").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (2, SUPER_DIGEST_KEYS[0]));
    }

    // The super digest and skipACL also come from JVM flags (-Dzookeeper.KEY=VALUE, as
    // SERVER_JVMFLAGS sets them for ZooKeeper), the file winning; other flags are left
    // alone; a bad value from the flags is reported at line 0 under its key.
    #[test]
    fn security_keys_from_jvm_flags() {
        let flags = "-Xmx1g -Dzookeeper.DigestAuthenticationProvider.superDigest=super:abc= \
                     -Dzookeeper.skipACL=yes -Dzookeeper.snapCount=5";
        let (cfg, warnings) = parse_with_jvm_flags("dataDir=/d\n", flags).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.super_digest.as_deref(), Some("super:abc="));
        assert!(cfg.skip_acl);
        assert_eq!(
            cfg.snap_count, 100_000,
            "only the security keys are read from flags"
        );
        let file = "dataDir=/d\nDigestAuthenticationProvider.superDigest=root:xyz=\nskipACL=no\n";
        let (cfg, warnings) = parse_with_jvm_flags(file, flags).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.super_digest.as_deref(), Some("root:xyz="));
        assert!(!cfg.skip_acl);
        let err = parse_with_jvm_flags(
            "dataDir=/d\n",
            "-Dzookeeper.DigestAuthenticationProvider.superDigest=nocolon",
        )
        .unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (0, "zookeeper.DigestAuthenticationProvider.superDigest")
        );
    }

    // skipACL=yes skips ACLs (ZooKeeper's exact spelling); no is the default; another
    // value is warned about and skips nothing.
    #[test]
    fn skip_acl_key() {
        assert!(!parse("dataDir=/d\n").unwrap().0.skip_acl);
        assert!(parse("dataDir=/d\nskipACL=yes\n").unwrap().0.skip_acl);
        assert!(
            parse("dataDir=/d\nzookeeper.skipACL=yes\n")
                .unwrap()
                .0
                .skip_acl
        );
        let (cfg, warnings) = parse("dataDir=/d\nskipACL=true\n").unwrap();
        assert!(!cfg.skip_acl);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].line, 2);
    }

    // globalOutstandingLimit is read (default 1000, ZooKeeper's); a value that is not a
    // count stops start-up naming its line.
    #[test]
    fn global_outstanding_limit() {
        let (cfg, warnings) = parse("dataDir=/d\n").unwrap();
        assert_eq!(cfg.global_outstanding_limit, 1000);
        assert!(warnings.is_empty());
        let (cfg, warnings) = parse("dataDir=/d\nglobalOutstandingLimit = 10\n").unwrap();
        assert_eq!(cfg.global_outstanding_limit, 10);
        assert!(warnings.is_empty(), "{warnings:?}");
        for bad in ["-1", "lots", "1e3", ""] {
            let err = parse(&format!("dataDir=/d\n\nglobalOutstandingLimit={bad}\n")).unwrap_err();
            assert_eq!(
                (err.line, err.key.as_str()),
                (3, "globalOutstandingLimit"),
                "{bad}"
            );
            assert!(err.reason.contains("request count"), "{err}");
        }
    }

    // paddock.snapshotWriteBytesPerSec paces snapshot writes (default 64 MiB/s, 0 is
    // unpaced); a value that is not a byte rate stops start-up naming its line.
    #[test]
    fn snapshot_write_rate() {
        let (cfg, _) = parse("dataDir=/d\n").unwrap();
        assert_eq!(cfg.snapshot_write_bytes_per_sec, 64 << 20);
        let (cfg, warnings) = parse("dataDir=/d\npaddock.snapshotWriteBytesPerSec=0\n").unwrap();
        assert_eq!(cfg.snapshot_write_bytes_per_sec, 0);
        assert!(warnings.is_empty(), "{warnings:?}");
        let err = parse("dataDir=/d\npaddock.snapshotWriteBytesPerSec=fast\n").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (2, "paddock.snapshotWriteBytesPerSec")
        );
    }

    // paddock.snapshotLogKeptBytes bounds the log kept behind a snapshot (default 8 MiB,
    // 0 cuts at the snapshot); a value that is not a byte count stops start-up naming
    // its line.
    #[test]
    fn snapshot_log_kept() {
        let (cfg, _) = parse("dataDir=/d\n").unwrap();
        assert_eq!(cfg.snapshot_log_kept_bytes, 8 << 20);
        let (cfg, warnings) = parse("dataDir=/d\npaddock.snapshotLogKeptBytes=0\n").unwrap();
        assert_eq!(cfg.snapshot_log_kept_bytes, 0);
        assert!(warnings.is_empty(), "{warnings:?}");
        let err = parse("dataDir=/d\npaddock.snapshotLogKeptBytes=-1\n").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (2, "paddock.snapshotLogKeptBytes")
        );
    }

    // sslQuorum=true reads PEM key and trust stores; it needs both, refuses other store
    // types, and warns about the keys it does not use. Without it, ssl.quorum.* keys are
    // warned about as having no effect.
    #[test]
    fn quorum_tls_keys() {
        let (cfg, _) = parse("dataDir=/d\n").unwrap();
        assert_eq!(cfg.quorum_tls, None);
        let stores = "ssl.quorum.keyStore.location=/k.pem\nssl.quorum.trustStore.location=/t.pem\n";
        let (cfg, warnings) = parse(&format!("dataDir=/d\nsslQuorum=true\n{stores}")).unwrap();
        assert_eq!(
            cfg.quorum_tls,
            Some(QuorumTlsConfig {
                key_store: "/k.pem".into(),
                trust_store: "/t.pem".into(),
                hostname_verification: true,
            })
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        let (cfg, warnings) = parse(&format!(
            "dataDir=/d\nsslQuorum=TRUE\n{stores}ssl.quorum.hostnameVerification=false\n\
             ssl.quorum.ciphersuites=X\nssl.quorum.keyStore.password=pw\n"
        ))
        .unwrap();
        assert!(!cfg.quorum_tls.unwrap().hostname_verification);
        let lines: Vec<usize> = warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, vec![6, 7], "{warnings:?}");

        let err =
            parse("dataDir=/d\nsslQuorum=true\nssl.quorum.keyStore.location=/k.pem\n").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (2, "ssl.quorum.trustStore.location")
        );
        let err = parse(&format!(
            "dataDir=/d\nsslQuorum=true\n{stores}ssl.quorum.trustStore.type=JKS\n"
        ))
        .unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (5, "ssl.quorum.trustStore.type")
        );
        let err = parse(
            "dataDir=/d\nsslQuorum=true\nssl.quorum.keyStore.location=/k.jks\n\
             ssl.quorum.trustStore.location=/t.pem\n",
        )
        .unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (3, "ssl.quorum.keyStore.type")
        );
        let err = parse("dataDir=/d\nsslQuorum=yes\n").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (2, "sslQuorum"));

        let (cfg, warnings) = parse(&format!("dataDir=/d\n{stores}")).unwrap();
        assert_eq!(cfg.quorum_tls, None);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0]
                .message
                .contains("no effect without sslQuorum=true")
        );
    }

    // Quorum SASL needs the JAAS file and enableSasl under the *RequireSasl switches (a
    // misconfiguration stops start-up naming its line); the JAAS file and the section names
    // come from the JVM flags ZooKeeper's operators use, with ZooKeeper's defaults.
    #[test]
    fn sasl_keys() {
        for key in [
            "quorum.auth.learnerRequireSasl",
            "quorum.auth.serverRequireSasl",
        ] {
            let err = parse(&format!("dataDir=/d\n\n{key}=true\n")).unwrap_err();
            assert_eq!((err.line, err.key.as_str()), (3, key));
            let (_, warnings) = parse(&format!("dataDir=/d\n{key}=false\n")).unwrap();
            assert!(warnings.is_empty(), "{warnings:?}");
        }
        let err = parse("dataDir=/d\nquorum.auth.enableSasl=true\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("JAAS"), "{err}");
        let (cfg, _) = parse("dataDir=/d\n").unwrap();
        assert_eq!(cfg.sasl.jaas_file, None);
        assert_eq!(cfg.sasl.server_section, "Server");
        assert_eq!(cfg.sasl.quorum.learner_section, "QuorumLearner");
        assert_eq!(cfg.sasl.quorum.server_section, "QuorumServer");
        let text = "dataDir=/d\nquorum.auth.enableSasl=true\nquorum.auth.serverRequireSasl=true\n\
                    authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n";
        let flags = "-Djava.security.auth.login.config=/etc/jaas.conf -Dzookeeper.superUser=admin";
        let (cfg, warnings) = parse_with_jvm_flags(text, flags).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.sasl.jaas_file, Some(PathBuf::from("/etc/jaas.conf")));
        assert_eq!(cfg.sasl.super_user.as_deref(), Some("admin"));
        assert!(cfg.sasl.quorum.enabled && cfg.sasl.quorum.server_require);
        assert!(!cfg.sasl.quorum.learner_require);
        // Sessions that must authenticate first are not supported: refused, not ignored.
        for key in ["enforce.auth.enabled", "sessionRequireClientSASLAuth"] {
            let err = parse(&format!("dataDir=/d\n{key}=true\n")).unwrap_err();
            assert_eq!((err.line, err.key.as_str()), (2, key));
            assert!(parse(&format!("dataDir=/d\n{key}=false\n")).is_ok());
        }
        let (_, warnings) = parse("dataDir=/d\nauthProvider.2=com.example.Custom\n").unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].message.contains("custom"), "{warnings:?}");
    }

    // secureClientPort opens a TLS client port with PEM stores; alone it opens no
    // plaintext port (clientPort set too: both). Client certificates are needed by
    // default, so a trust store is then required; want and none are read; a bad value,
    // a missing key store or a JKS store stops start-up naming the line.
    #[test]
    fn secure_client_port_keys() {
        let stores = "ssl.keyStore.location=/k.pem\nssl.trustStore.location=/t.pem\n";
        let (cfg, warnings) =
            parse(&format!("dataDir=/d\nsecureClientPort=2281\n{stores}")).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.client_port, None, "no plaintext port");
        assert_eq!(
            cfg.secure_client,
            Some(SecureClientConfig {
                port: 2281,
                address: None,
                key_store: "/k.pem".into(),
                trust_store: Some("/t.pem".into()),
                client_auth: ClientAuth::Need,
            })
        );
        let (cfg, _) = parse(&format!(
            "dataDir=/d\nclientPort=2181\nsecureClientPort=2281\n{stores}ssl.clientAuth=want\n\
             secureClientPortAddress=127.0.0.1\n"
        ))
        .unwrap();
        assert_eq!(cfg.client_port, Some(2181));
        let secure = cfg.secure_client.unwrap();
        assert_eq!(secure.client_auth, ClientAuth::Want);
        assert_eq!(secure.address, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let (cfg, _) = parse(
            "dataDir=/d\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.clientAuth=NONE\n",
        )
        .unwrap();
        assert_eq!(cfg.secure_client.unwrap().client_auth, ClientAuth::None);

        let err =
            parse("dataDir=/d\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\n").unwrap_err();
        assert_eq!(err.key, "ssl.trustStore.location");
        let err = parse("dataDir=/d\nsecureClientPort=2281\n").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (2, "ssl.keyStore.location"));
        let err = parse(&format!(
            "dataDir=/d\nsecureClientPort=2281\n{stores}ssl.clientAuth=maybe\n"
        ))
        .unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (5, "ssl.clientAuth"));
        let err = parse(
            "dataDir=/d\nsecureClientPort=2281\nssl.keyStore.location=/k.jks\nssl.clientAuth=none\n",
        )
        .unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (3, "ssl.keyStore.type"));
        // Without secureClientPort the client TLS keys do nothing, and say so.
        let (cfg, warnings) = parse(&format!("dataDir=/d\n{stores}")).unwrap();
        assert_eq!(cfg.secure_client, None);
        assert_eq!(cfg.client_port, Some(2181));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    // With dynamicConfigFile, the servers come from that file (zoo.cfg may hold none);
    // the file takes server lines and a hex version, and refuses weights, groups and
    // other keys, each error at its line.
    #[test]
    fn dynamic_config_file() {
        let (cfg, warnings) =
            parse("dataDir=/d\ndynamicConfigFile=/etc/zoo.cfg.dynamic\n").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            cfg.dynamic_config_file.as_deref(),
            Some("/etc/zoo.cfg.dynamic")
        );
        assert!(cfg.servers.is_empty());
        let err = parse("dataDir=/d\ndynamicConfigFile=/x\nserver.1=h:1:2\n").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (3, "server.1"));
        let servers = parse_dynamic(
            "server.1=10.0.0.1:2888:3888;2181\nserver.2=10.0.0.2:2888:3888:participant;0.0.0.0:2181\n\
             server.3=10.0.0.3:2888:3888:observer;2181\nversion=100000000\n",
        )
        .unwrap();
        assert_eq!(servers.len(), 3);
        assert!(servers[&3].observer);
        assert_eq!(servers[&2].client, Some((Some("0.0.0.0".to_owned()), 2181)));
        let cfg = cfg.with_dynamic(servers);
        assert_eq!(cfg.servers.len(), 3);
        for (text, line, key) in [
            ("server.1=h:1:2\nweight.1=2\n", 2, "weight.1"),
            ("server.1=h:1:2\ngroup.1=1:2\n", 2, "group.1"),
            ("server.1=h:1:2\ntickTime=2000\n", 2, "tickTime"),
            ("version=xyz\nserver.1=h:1:2\n", 1, "version"),
            ("version=1\n", 0, "server.N"),
        ] {
            let err = parse_dynamic(text).unwrap_err();
            assert_eq!((err.line, err.key.as_str()), (line, key), "{text}");
        }
    }

    // A member without clientPort in zoo.cfg takes its client port and address from its
    // own server line; with clientPort, the server line must agree.
    #[test]
    fn own_client_address_from_the_server_line() {
        let servers = parse_dynamic(
            "server.1=h:1:2;127.0.0.5:2191\nserver.2=h:3:4;2192\nserver.3=h:5:6\nserver.4=h:7:8;x.invalid:2194\n",
        )
        .unwrap();
        let (cfg, _) = parse("dataDir=/d\ndynamicConfigFile=/x\n").unwrap();
        let cfg = cfg.with_dynamic(servers);
        let local = "127.0.0.5".parse::<IpAddr>().unwrap();
        assert_eq!(cfg.own_client_address(1), Ok((Some(2191), Some(local))));
        assert_eq!(cfg.own_client_address(2), Ok((Some(2192), None)));
        assert_eq!(
            cfg.own_client_address(3),
            Ok((Some(2181), None)),
            "zoo.cfg's default"
        );
        assert!(cfg.own_client_address(4).unwrap_err().contains("resolve"));
        let (explicit, _) = parse("dataDir=/d\nclientPort=2192\ndynamicConfigFile=/x\n").unwrap();
        let explicit = explicit.with_dynamic(cfg.servers.clone());
        assert_eq!(explicit.own_client_address(2), Ok((Some(2192), None)));
        assert!(
            explicit
                .own_client_address(1)
                .unwrap_err()
                .contains("differ")
        );
    }

    // A server line's host may be a bracketed IPv6 address or a host name.
    #[test]
    fn server_lines_take_ipv6_and_host_names() {
        let (cfg, _) = parse(
            "dataDir=/d\nserver.1=[::1]:2888:3888:participant;[::1]:2181\n\
             server.2=zk2.example.com:2888:3888\n",
        )
        .unwrap();
        let one = &cfg.servers[&1];
        assert_eq!(
            (one.host.as_str(), one.peer_port, one.election_port),
            ("::1", 2888, 3888)
        );
        assert_eq!(one.host_port(2888), "[::1]:2888");
        assert_eq!(one.client, Some((Some("[::1]".to_owned()), 2181)));
        assert_eq!(cfg.servers[&2].host_port(2888), "zk2.example.com:2888");
        let err = parse("dataDir=/d\nserver.1=[::1:2888:3888\n").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (2, "server.1"));
    }

    // Quota enforcement, which Paddock lacks, stops start-up at its line when on; off, it
    // is accepted silently.
    #[test]
    fn enforced_quotas_are_refused() {
        let err = parse("dataDir=/d\nenforceQuota=true\n").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (2, "enforceQuota"));
        assert!(
            err.reason.contains("quota enforcement is not supported"),
            "{err:?}"
        );
        let (_, warnings) = parse("dataDir=/d\nzookeeper.enforceQuota=false\n").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    // clientPortAddress takes an IP address, bracketed or not, or a host name resolved at
    // start; a name that does not resolve is an error at its line.
    #[test]
    fn client_port_address_takes_host_names() {
        for (value, want) in [("127.0.0.7", "127.0.0.7"), ("[::1]", "::1"), ("::1", "::1")] {
            let (cfg, _) = parse(&format!("dataDir=/d\nclientPortAddress={value}\n")).unwrap();
            assert_eq!(
                cfg.client_port_address,
                Some(want.parse().unwrap()),
                "{value}"
            );
        }
        let (cfg, _) = parse("dataDir=/d\nclientPortAddress=localhost\n").unwrap();
        assert!(cfg.client_port_address.unwrap().is_loopback());
        let err = parse("dataDir=/d\nclientPortAddress=no-such-host.invalid\n").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (2, "clientPortAddress"));
    }

    // The no-argument server binds loopback:2181 with data in ./paddock-data.
    #[test]
    fn standalone_default() {
        let cfg = ZooCfg::standalone_default();
        assert_eq!(cfg.client_port, Some(2181));
        assert_eq!(cfg.data_dir, "./paddock-data");
        assert_eq!(
            cfg.client_port_address,
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
    }
}
