//! A real `redis-server` for integration tests, started on a free loopback
//! port without persistence and stopped (killed, reaped, its directory
//! removed) when the [`RedisServer`] drops, also when the test panics.
//!
//! Include it from a test file (std only, no dev-dependencies):
//!
//! ```ignore
//! #[path = "support/redis_server.rs"]
//! mod redis_server;
//!
//! let server = redis_server::RedisServer::start();
//! assert_eq!(server.command(&["SET", "k", "v"]), "OK");
//! // ... point the code under test at server.url() ...
//! ```
//!
//! A server started with `--requirepass` is reached by the harness (its
//! probes, [`RedisServer::command`], its SHUTDOWN) with that password.
//! [`RedisServer::start_tls`] also serves TLS on a second port, with a
//! certificate signed by a CA of its own that the `openssl` CLI makes.
//!
//! A missing `redis-server` binary fails the test (never skips it), with the
//! install hint (`apt-get install redis-server`); so does a missing `openssl`
//! for a TLS server. Each server runs in a
//! directory of its own under `std::env::temp_dir()`, with its stdout and
//! stderr in `redis.log` there; a panic about a server ends with that log's
//! tail.
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The binary, looked up on `PATH`.
const BINARY: &str = "redis-server";
const INSTALL_HINT: &str = "the tests need a real `redis-server` on PATH: install it with \
     `apt-get install redis-server` (Debian/Ubuntu; prefix `sudo` when not root)";
/// How long a start may take before the test fails; also how long a restart
/// waits for its port to come free, and a SHUTDOWN for the process to exit.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Fresh ports tried when a start finds its port taken (a race with another
/// process between our probe and redis's bind).
const PORT_ATTEMPTS: usize = 5;
/// A readiness probe's limit (connect, PING, INFO): short, so that a port
/// held by something that accepts but never answers cannot stall the start.
const PROBE: Duration = Duration::from_millis(500);
const LOG: &str = "redis.log";

/// A running `redis-server` owned by the test. See the module docs.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// Extra options from [`RedisServer::start_with`], after the defaults.
    args: Vec<String>,
    /// The `--requirepass` among `args`: the harness's connections AUTH.
    password: Option<String>,
    /// With [`RedisServer::start_tls`]: the TLS port (plain `port` stays,
    /// for the harness's probes and commands).
    tls_port: Option<u16>,
    dir: PathBuf,
}

/// Why a launch did not come up, when trying again may help.
struct PortTaken;

impl RedisServer {
    /// Starts a server with the defaults: `--port P --bind 127.0.0.1
    /// --save "" --appendonly no --daemonize no --dir <its temp dir>`.
    ///
    /// Panics (with the install hint) if `redis-server` is missing, and
    /// (with the log tail) if it does not answer PING within 10 s.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Like [`start`](RedisServer::start), with `args` appended to the
    /// command line; later options win, so `&["--appendonly", "yes",
    /// "--appendfsync", "always"]` turns the AOF on, and `&["--requirepass",
    /// "pw"]` a password (which the harness then sends). Do not override
    /// `--port`, `--bind`, `--dir` or `--daemonize`: the harness owns them.
    pub fn start_with(args: &[&str]) -> RedisServer {
        RedisServer::start_inner(args, false)
    }

    /// Like [`start_with`](RedisServer::start_with), also serving TLS on a
    /// second free port ([`tls_url`](RedisServer::tls_url)) with a
    /// certificate for `127.0.0.1` and `localhost` signed by a CA made for
    /// this server ([`ca_file`](RedisServer::ca_file)); clients need no
    /// certificate of their own. Panics if `openssl` is missing.
    pub fn start_tls(args: &[&str]) -> RedisServer {
        RedisServer::start_inner(args, true)
    }

    fn start_inner(args: &[&str], tls: bool) -> RedisServer {
        let password = args.iter().position(|a| *a == "--requirepass").and_then(|i| args.get(i + 1));
        let mut server = RedisServer {
            child: None,
            port: 0,
            args: args.iter().map(|a| a.to_string()).collect(),
            password: password.map(|p| p.to_string()),
            tls_port: None,
            dir: unique_dir(),
        };
        // `server` owns the directory (and any child) from here: a panic
        // below drops it, which cleans both up.
        if tls {
            make_certificates(&server.dir);
        }
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port();
            if tls {
                server.tls_port = Some(free_port());
            }
            if server.launch().is_ok() {
                return server;
            }
        }
        server.fail(&format!(
            "no free port after {PORT_ATTEMPTS} attempts (each was taken before redis bound it)"
        ))
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `rediss://127.0.0.1:TLS_PORT/0`, for a server from
    /// [`start_tls`](RedisServer::start_tls).
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}/0", self.tls_port.expect("a server from RedisServer::start_tls"))
    }

    /// The PEM file of the CA that signed the TLS certificate of a server
    /// from [`start_tls`](RedisServer::start_tls).
    pub fn ca_file(&self) -> PathBuf {
        assert!(self.tls_port.is_some(), "a server from RedisServer::start_tls");
        self.dir.join(CA_FILE)
    }

    /// The loopback port; stays the same across [`restart`](RedisServer::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, while a server process is running (not after
    /// [`kill`](RedisServer::kill)).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's working directory (its `--dir`, with `redis.log`);
    /// removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server (SHUTDOWN, or SIGKILL if it does not exit within
    /// 10 s; nothing if already killed) and starts it again on the same
    /// port, with the same options and directory, so an AOF survives.
    /// Waits up to 10 s for the port to come free; panics if it does not.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + TIMEOUT;
        while self.launch().is_err() {
            if Instant::now() >= deadline {
                self.fail("restart: the port stayed taken for 10 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILLs the server and reaps it (for fault tests). The port and
    /// directory stay; [`restart`](RedisServer::restart) brings it back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `args` as one RESP command over a fresh connection and returns
    /// the reply as plain text:
    ///
    /// * `+OK` (simple string) → `"OK"`
    /// * `:42` (integer) → `"42"`
    /// * `$5\r\nhello` (bulk string) → `"hello"` (`$0` → `""`)
    /// * `$-1` / `*-1` (nil) → `"(nil)"`
    /// * `*N` (array) → its elements as above, each followed by `'\n'`
    ///   (nested arrays flattened; `*0` → `""`), e.g. `CONFIG GET save`
    ///   → `"save\n\n"`
    /// * `-ERR ...` (error, also inside an array) → panics with it.
    ///
    /// Panics (with the log tail) if the server cannot be reached.
    pub fn command(&self, args: &[&str]) -> String {
        match self.try_command(args) {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) => panic!("redis-server on port {} answered {args:?} with: -{error}", self.port),
            Err(e) => self.fail(&format!("{args:?}: {e}")),
        }
    }

    fn try_command(&self, args: &[&str]) -> io::Result<Result<String, String>> {
        self.try_command_within(args, TIMEOUT)
    }

    fn try_command_within(&self, args: &[&str], timeout: Duration) -> io::Result<Result<String, String>> {
        let mut stream = self.connect(timeout)?;
        stream.write_all(&encode(args))?;
        let mut reader = BufReader::new(stream);
        let mut out = String::new();
        Ok(read_reply(&mut reader, &mut out)?.map(|_| out))
    }

    /// Spawns the process on `self.port` and waits until it answers PING.
    /// `Err` when its bind failed with "Address already in use".
    fn launch(&mut self) -> Result<(), PortTaken> {
        let log_path = self.dir.join(LOG);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log_path.display()));
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let stderr = log.try_clone().expect("clone the log file handle");
        let port = self.port.to_string();
        let dir = self.dir.to_str().expect("temp dir path is UTF-8");
        let defaults =
            ["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"];
        let tls: Vec<String> = match self.tls_port {
            None => Vec::new(),
            Some(tls_port) => [
                ("--tls-port", tls_port.to_string()),
                ("--tls-cert-file", SERVER_CERT.to_owned()),
                ("--tls-key-file", SERVER_KEY.to_owned()),
                ("--tls-ca-cert-file", CA_FILE.to_owned()),
                ("--tls-auth-clients", "no".to_owned()),
            ]
            .into_iter()
            .flat_map(|(k, v)| [k.to_owned(), v])
            .collect(),
        };
        let spawned = Command::new(BINARY)
            .args(defaults)
            .args(["--dir", dir])
            .args(&tls)
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn();
        match spawned {
            Ok(child) => self.child = Some(child),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                panic!("`{BINARY}` not found ({e}); {INSTALL_HINT}")
            }
            Err(e) => panic!("cannot run `{BINARY}`: {e}; {INSTALL_HINT}"),
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("just spawned");
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    let log = read_log(&self.dir);
                    let this_run = log.get(log_start as usize..).unwrap_or("");
                    if this_run.contains("Address already in use") {
                        return Err(PortTaken);
                    }
                    self.fail(&format!("redis-server exited during startup ({status})"));
                }
                Ok(None) => {}
                Err(e) => self.fail(&format!("waiting on redis-server: {e}")),
            }
            if Instant::now() >= deadline {
                self.kill();
                self.fail("redis-server did not answer PING within 10 s");
            }
            if self.answers_ping() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the inline `PING` gets `+PONG` from *our* process (not from
    /// another server that won the port: INFO's process_id must match).
    fn answers_ping(&self) -> bool {
        let Some(pid) = self.pid() else { return false };
        let pong = (|| -> io::Result<bool> {
            let mut stream = self.connect(PROBE)?;
            stream.write_all(b"PING\r\n")?;
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line)?;
            Ok(line.starts_with("+PONG"))
        })();
        if !matches!(pong, Ok(true)) {
            return false;
        }
        match self.try_command_within(&["INFO", "server"], PROBE) {
            Ok(Ok(info)) => info.lines().any(|l| l.trim() == format!("process_id:{pid}")),
            _ => false,
        }
    }

    /// SHUTDOWN, then wait for the exit (SIGKILL after 10 s).
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Ok(mut stream) = self.connect(TIMEOUT) {
            // The server closes the connection instead of replying.
            let _ = stream.write_all(&encode(&["SHUTDOWN"]));
            let _ = stream.read(&mut [0u8; 256]);
        }
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// A connection to the plain port whose reads and writes give up after
    /// `timeout`; authenticated when the server has a password.
    fn connect(&self, timeout: Duration) -> io::Result<TcpStream> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let stream = TcpStream::connect_timeout(&addr, PROBE)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        if let Some(password) = &self.password {
            (&stream).write_all(&encode(&["AUTH", password]))?;
            let mut out = String::new();
            if let Err(error) = read_reply(&mut BufReader::new(&stream), &mut out)? {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("AUTH: -{error}")));
            }
        }
        Ok(stream)
    }

    /// Panics with `msg`, the port and the tail of the server's log.
    fn fail(&self, msg: &str) -> ! {
        let log = read_log(&self.dir);
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        panic!(
            "redis-server on port {}: {msg}\n--- last lines of {} ---\n{tail}",
            self.port,
            self.dir.join(LOG).display()
        )
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A port the OS just handed out for loopback (free a moment ago).
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address of a bound listener").port()
}

const CA_FILE: &str = "ca.pem";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server.key";

/// Writes a CA (`ca.pem`, `ca.key`) and a server certificate it signed for
/// `127.0.0.1` and `localhost` (`server.pem`, `server.key`) into `dir`:
/// P-256 keys, valid two days, made with the `openssl` CLI.
fn make_certificates(dir: &Path) {
    let ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
               extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n";
    fs::write(dir.join("server.ext"), ext)
        .unwrap_or_else(|e| panic!("cannot write in {}: {e}", dir.display()));
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-keyout",
            "ca.key",
            "-out",
            CA_FILE,
            "-days",
            "2",
            "-subj",
            "/CN=taskmanager test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        &["req", "-keyout", SERVER_KEY, "-out", "server.csr", "-subj", "/CN=localhost"],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            CA_FILE,
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            SERVER_CERT,
        ],
    ];
    for (i, step) in steps.iter().enumerate() {
        let mut command = Command::new("openssl");
        command.current_dir(dir).args(*step);
        if i < 2 {
            command.args(ec);
        }
        match command.output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!("openssl {step:?} failed: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => panic!(
                "cannot run `openssl` ({e}): TLS tests need the openssl CLI (`apt-get install openssl`)"
            ),
        }
    }
}

/// A new, empty directory under the system temp dir.
fn unique_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("taskmanager-redis-{}-{n}-{nanos}", std::process::id()));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

fn read_log(dir: &Path) -> String {
    let mut bytes = Vec::new();
    let _ = File::open(dir.join(LOG)).and_then(|mut f| f.read_to_end(&mut bytes));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A RESP array of bulk strings.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Appends one reply to `out` in [`RedisServer::command`]'s format:
/// `Ok(Ok(true))` if it was a (non-nil) array, `Ok(Err(msg))` for an error.
fn read_reply(reader: &mut impl BufRead, out: &mut String) -> io::Result<Result<bool, String>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a reply"));
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = (line.get(..1).unwrap_or(""), line.get(1..).unwrap_or(""));
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad reply {line:?}"));
    // A negative length is nil.
    let len = || rest.parse::<i64>().map(|n| usize::try_from(n).ok()).map_err(|_| bad());
    match kind {
        "+" | ":" => out.push_str(rest),
        "-" => return Ok(Err(rest.to_string())),
        "$" => match len()? {
            None => out.push_str("(nil)"),
            Some(len) => {
                let mut data = vec![0u8; len + 2];
                reader.read_exact(&mut data)?;
                out.push_str(&String::from_utf8_lossy(&data[..len]));
            }
        },
        "*" => match len()? {
            None => out.push_str("(nil)"),
            Some(len) => {
                for _ in 0..len {
                    match read_reply(reader, out)? {
                        Err(error) => return Ok(Err(error)),
                        Ok(true) => {} // a nested array ended its own last element
                        Ok(false) => out.push('\n'),
                    }
                }
                return Ok(Ok(true));
            }
        },
        _ => return Err(bad()),
    }
    Ok(Ok(false))
}

/// The example worker program (`examples/redis_worker.rs`), which the
/// multi-process tests run: built by `cargo build --examples --features
/// redis` (CI's test script does, before the tests).
#[allow(dead_code)]
pub fn worker_program() -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop();
    dir.pop();
    let path = dir.join("examples").join("redis_worker");
    assert!(path.exists(), "{} is missing: run `cargo build --examples --features redis`", path.display());
    path
}
