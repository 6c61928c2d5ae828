//! The Redis client a broker connects with, made from its settings.
//!
//! The URL carries both AUTH and TLS, as the `redis` crate reads it:
//! `redis://:password@host:port/db` (the `requirepass` password),
//! `redis://user:password@host:port/db` (an ACL user), and `rediss://...`
//! for TLS, which checks the server's certificate against the system's
//! trusted roots, or against the CA file of `Builder::broker_ca_file` only.
//!
//! Calls (`Broker::with_conn`) go through a pool of connections, each call
//! within the broker timeout as a whole; a failed one's error says where
//! Redis is, what the call was and, for a timeout, after how long.

use std::time::{Duration, Instant};

use super::{Broker, BrokerConfig};
use crate::err::ConfigError;

/// The client for `config`: its URL, and for TLS its CA file. Nothing is
/// connected yet; what is wrong with the settings is a
/// [`ConfigError::Broker`].
pub(super) fn open(config: &BrokerConfig) -> Result<redis::Client, ConfigError> {
    let unusable = |e: redis::RedisError| ConfigError::Broker(redis_error(&e));
    let client = match &config.ca_file {
        None => redis::Client::open(config.url.as_str()).map_err(unusable)?,
        Some(path) => {
            let shown = path.display();
            let pem = std::fs::read(path).map_err(|e| {
                ConfigError::Broker(format!("cannot read the CA certificate file {shown}: {e}"))
            })?;
            // The redis crate would take a file without one as an empty set
            // of trusted roots, and every connection would fail later.
            if !pem.windows(PEM_CERTIFICATE.len()).any(|w| w == PEM_CERTIFICATE) {
                return Err(ConfigError::Broker(format!(
                    "the CA certificate file {shown} holds no PEM certificate (no \"-----BEGIN CERTIFICATE-----\")"
                )));
            }
            let certificates = redis::TlsCertificates { client_tls: None, root_cert: Some(pem) };
            // With a `redis://` URL: "... requires a URL with the `rediss://` scheme".
            redis::Client::build_with_tls(config.url.as_str(), certificates).map_err(unusable)?
        }
    };
    if matches!(client.get_connection_info().addr, redis::ConnectionAddr::TcpTls { .. }) {
        choose_tls_provider();
    }
    Ok(client)
}

const PEM_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

impl Broker {
    /// A connection with the broker timeout on every call.
    pub(super) fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let conn = self.connect_within(self.config.timeout)?;
        self.set_timeouts(&conn)?;
        Ok(conn)
    }

    /// A connection made within `limit`. The redis crate gives each reply of
    /// the handshake (`AUTH`, `SELECT`) its own whole read timeout, so each
    /// gets a share.
    fn connect_within(&self, limit: Duration) -> redis::RedisResult<redis::Connection> {
        let info = &self.client.get_connection_info().redis;
        let handshake = u32::from(info.password.is_some()) + u32::from(info.db != 0);
        self.client.get_connection_with_timeout(limit / handshake.max(1))
    }

    /// Runs `f` on a pooled connection (made if none is idle); a connection
    /// that failed is dropped, not pooled.
    ///
    /// The broker timeout bounds the whole call: a connection made for it
    /// gives its reads and writes only what the connect left (else a Redis
    /// that accepts but never answers took the timeout twice: once in the
    /// connect's handshake, once for the reply). A pooled connection's call
    /// gets the whole timeout.
    pub(super) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> redis::RedisResult<T> {
        let started = Instant::now();
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let (mut conn, fresh) = match pooled {
            Some(conn) => (conn, false),
            None => (self.connect()?, true),
        };
        if fresh {
            let left = self.config.timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into());
            }
            conn.set_read_timeout(Some(left))?;
            conn.set_write_timeout(Some(left))?;
        }
        let result = f(&mut conn);
        if result.is_ok() && (!fresh || self.set_timeouts(&conn).is_ok()) {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        }
        result
    }

    fn set_timeouts(&self, conn: &redis::Connection) -> redis::RedisResult<()> {
        conn.set_read_timeout(Some(self.config.timeout))?;
        conn.set_write_timeout(Some(self.config.timeout))
    }

    /// A failed call's error, for the user: where Redis is, what the call
    /// was, and for a timeout after how long (see `describe`).
    pub(super) fn call_error(&self, what: &str, e: &redis::RedisError) -> String {
        let addr = self.client.get_connection_info().addr.to_string();
        describe(e, &addr, self.config.timeout, what)
    }
}

/// What went wrong in a call to Redis; for a refused password or an
/// untrusted certificate, led by what to do (the redis crate's own words,
/// kept after it, say neither).
pub(super) fn redis_error(e: &redis::RedisError) -> String {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let hint = if e.kind() == redis::ErrorKind::AuthenticationFailed {
        "Redis refused the broker URL's user or password (redis://[user]:password@host:port/db)"
    } else if lower.contains("noauth") || lower.contains("unauthenticated") {
        "Redis requires authentication: give the password in the broker URL \
         (redis://[user]:password@host:port/db)"
    } else if lower.contains("certificate") {
        "the TLS certificate of Redis is not trusted: if a private CA signed it, \
         trust that CA's PEM file with broker_ca_file"
    } else {
        return text;
    };
    format!("{hint}: {text}")
}

/// What went wrong in the call `what` to Redis at `addr`, whose limit is
/// `timeout`, in words a user can act on: a call that timed out says after
/// how long, a refused connection says so. The cause follows.
fn describe(e: &redis::RedisError, addr: &str, timeout: Duration, what: &str) -> String {
    let cause = redis_error(e);
    if e.is_timeout() {
        format!("Redis at {addr} did not answer within {} ({what}): {cause}", shown(timeout))
    } else if e.is_connection_refusal() {
        format!("Redis at {addr} refused the connection ({what}): is it running there? {cause}")
    } else {
        // Led by the cause: it may say what to do (a password, a CA file).
        format!("{cause} (Redis at {addr}, {what})")
    }
}

/// `1.0 s`, `0.5 s`, `20 ms`.
fn shown(d: Duration) -> String {
    if d >= Duration::from_millis(100) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Makes `ring` the process's rustls provider unless the application chose
/// one first. rustls finds no default by itself when its crate features
/// enable two providers (another dependency may turn on `aws-lc-rs`), and
/// the redis crate's TLS connect would then panic.
fn choose_tls_provider() {
    // An Err only says a provider is installed already: the application's.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
