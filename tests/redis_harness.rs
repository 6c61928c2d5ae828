//! The test harness itself (tests/support/redis_server.rs): a real
//! `redis-server` on a free loopback port, without persistence, that answers
//! RESP commands, restarts on the same port, and leaves no process or
//! directory behind, also when the test panics. Without `redis-server` these
//! fail with the install hint.

#[path = "support/redis_server.rs"]
mod redis_server;

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;

use redis_server::RedisServer;

const AOF: &[&str] = &["--appendonly", "yes", "--appendfsync", "always"];

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_server_answers_commands_on_its_loopback_port() {
    let server = RedisServer::start();
    assert_eq!(server.url(), format!("redis://127.0.0.1:{}/0", server.port()));
    assert_ne!(server.port(), 6379, "a free port, not the default");
    assert_eq!(server.command(&["PING"]), "PONG");
    assert_eq!(server.command(&["SET", "greeting", "hello world"]), "OK");
    assert_eq!(server.command(&["GET", "greeting"]), "hello world");
    assert_eq!(server.command(&["GET", "missing"]), "(nil)");
    assert_eq!(server.command(&["SET", "empty", ""]), "OK");
    assert_eq!(server.command(&["GET", "empty"]), "");
    assert_eq!(server.command(&["DBSIZE"]), "2");
    assert_eq!(server.command(&["RPUSH", "list", "a", "b", "c"]), "3");
    assert_eq!(server.command(&["LRANGE", "list", "0", "-1"]), "a\nb\nc\n");
    assert_eq!(server.command(&["FLUSHALL"]), "OK");
    assert_eq!(server.command(&["DBSIZE"]), "0");
    let log = std::fs::read_to_string(server.dir().join("redis.log")).unwrap();
    assert!(log.contains("Ready to accept connections"), "{log}");
}

#[test]
fn two_servers_get_two_ports_and_separate_data() {
    let a = RedisServer::start();
    let b = RedisServer::start();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    a.command(&["SET", "k", "a"]);
    assert_eq!(b.command(&["GET", "k"]), "(nil)");
}

#[test]
fn nothing_is_persisted_by_default() {
    let mut server = RedisServer::start();
    assert_eq!(server.command(&["CONFIG", "GET", "save"]), "save\n\n");
    assert_eq!(server.command(&["CONFIG", "GET", "appendonly"]), "appendonly\nno\n");
    assert_eq!(server.command(&["CONFIG", "GET", "bind"]), "bind\n127.0.0.1\n");
    server.command(&["SET", "k", "v"]);
    server.restart();
    assert_eq!(server.command(&["DBSIZE"]), "0", "a restart without AOF starts empty");
    let files: Vec<_> = std::fs::read_dir(server.dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, ["redis.log"], "no RDB or AOF file written");
}

#[test]
fn a_restart_with_aof_keeps_the_port_and_the_data() {
    let mut server = RedisServer::start_with(AOF);
    assert_eq!(server.command(&["CONFIG", "GET", "appendonly"]), "appendonly\nyes\n");
    let (port, url, first) = (server.port(), server.url(), server.pid().unwrap());
    server.command(&["SET", "k", "v"]);
    server.command(&["INCRBY", "n", "41"]);
    server.restart();
    let second = server.pid().unwrap();
    assert_ne!(first, second, "a new process");
    assert!(!alive(first), "the old process is gone");
    assert_eq!((server.port(), server.url()), (port, url));
    assert_eq!(server.command(&["GET", "k"]), "v");
    assert_eq!(server.command(&["INCR", "n"]), "42");
}

#[test]
fn a_killed_server_is_gone_until_restarted() {
    let mut server = RedisServer::start_with(AOF);
    server.command(&["SET", "k", "v"]);
    let pid = server.pid().unwrap();
    server.kill();
    assert!(!alive(pid), "SIGKILLed and reaped");
    assert_eq!(server.pid(), None);
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port())).is_err(), "nothing listens");
    server.restart();
    assert_eq!(server.command(&["GET", "k"]), "v", "fsync always: the write survived SIGKILL");
}

#[test]
#[should_panic(expected = "unknown command")]
fn an_error_reply_panics() {
    let server = RedisServer::start();
    server.command(&["NOSUCHCOMMAND"]);
}

#[test]
#[should_panic(expected = "last lines of")]
fn a_command_to_a_killed_server_panics_with_the_log() {
    let mut server = RedisServer::start();
    server.kill();
    server.command(&["PING"]);
}

#[test]
fn drop_leaves_no_process_and_no_directory() {
    let server = RedisServer::start();
    let (pid, dir) = (server.pid().unwrap(), server.dir().to_path_buf());
    assert!(alive(pid) && dir.exists());
    drop(server);
    assert!(!alive(pid), "process {pid} still exists");
    assert!(!dir.exists(), "{} still exists", dir.display());
}

#[test]
fn a_panicking_test_leaves_no_process_behind() {
    let (tx, rx) = mpsc::channel();
    let result = std::thread::spawn(move || {
        let mut server = RedisServer::start_with(AOF);
        server.restart();
        tx.send((server.pid().unwrap(), server.dir().to_path_buf())).unwrap();
        panic!("the test fails while its server runs");
    })
    .join();
    assert!(result.is_err());
    let (pid, dir) = rx.recv().unwrap();
    assert!(!alive(pid), "process {pid} outlived the panic");
    assert!(!dir.exists(), "{} outlived the panic", dir.display());
}

/// Runs itself again with an empty PATH: `start` must panic (fail the test,
/// not skip it) with the install hint.
#[test]
fn a_missing_binary_fails_with_the_install_hint() {
    const INNER: &str = "TASKMANAGER_REDIS_HARNESS_NO_BINARY";
    if std::env::var_os(INNER).is_some() {
        RedisServer::start();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_missing_binary_fails_with_the_install_hint", "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the inner test passed:\n{text}");
    assert!(text.contains("`redis-server` not found"), "{text}");
    assert!(text.contains("apt-get install redis-server"), "{text}");
    assert!(text.contains("1 failed"), "{text}");
}
