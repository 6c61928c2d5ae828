//! A named task's W3C trace context against a real `redis-server`: set at
//! submission (`NamedTask::trace_context`), it reaches the handler that
//! runs the task (`TraceContext::current`) whether the task is sent now,
//! delayed, or retried after a failure; a task sent without one, and a
//! recurring tick, carry none. Needs the `redis` feature.
#![cfg(feature = "redis")]

#[path = "support/named.rs"]
#[allow(dead_code)]
mod named;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis_server::RedisServer;
use serde_json::{json, Value};
use taskmanager::{Module, NamedRun, Recurrence, RemoteError, Retry, TraceContext};

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// What each run of `seen` found: its argument, its trace context
/// (traceparent, tracestate) and whether it was a recurring tick.
type Seen = Arc<Mutex<Vec<(Value, Option<(String, Option<String>)>, bool)>>>;

#[test]
fn the_trace_context_set_at_submission_is_what_the_handler_reads() {
    let server = RedisServer::start();
    let manager = named::manager(&server, &named::prefix("trace"));
    let jobs = Module::builder(&manager).name("jobs").max_workers(2).build().unwrap();
    let seen: Seen = Arc::default();
    let failures = Arc::new(AtomicU32::new(0));
    let (record, failed) = (Arc::clone(&seen), Arc::clone(&failures));
    jobs.register("seen", move |args: Value| {
        let run = NamedRun::current().expect("a handler runs as a named run");
        let trace =
            TraceContext::current().map(|t| (t.traceparent().to_owned(), t.tracestate().map(str::to_owned)));
        assert_eq!(
            trace,
            run.trace.as_ref().map(|t| (t.traceparent().to_owned(), t.tracestate().map(str::to_owned)))
        );
        record.lock().unwrap().push((args.clone(), trace, run.tick));
        if args == json!("retried") && failed.fetch_add(1, SeqCst) == 0 {
            return Err(RemoteError::new("Timeout", "first attempt"));
        }
        Ok(args)
    })
    .unwrap();
    manager.start_thread().unwrap();
    let context = TraceContext::new(PARENT, "vendor=1").unwrap();
    let traced = |arg: &str| jobs.named_task("seen", json!(arg)).trace_context(context.clone());
    let quick = Retry::new(1).backoff(Duration::from_millis(10), Duration::from_millis(10)).jitter(0.0);
    let handles = [
        traced("now").submit().unwrap(),
        traced("later").delay(Duration::from_millis(50)).submit().unwrap(),
        traced("retried").retry(quick).submit().unwrap(),
        jobs.add_named_task("seen", json!("plain")).unwrap(),
    ];
    for handle in handles {
        named::outcome(handle).expect("ran");
    }
    let schedule =
        jobs.schedule_named_recurring(Recurrence::every(Duration::from_millis(50)), "seen", json!("tick"));
    let schedule = schedule.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !seen.lock().unwrap().iter().any(|(arg, ..)| *arg == json!("tick")) {
        assert!(std::time::Instant::now() < deadline, "no tick ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    schedule.cancel().unwrap();
    manager.shutdown();
    let expected = Some((PARENT.to_owned(), Some("vendor=1".to_owned())));
    let seen = seen.lock().unwrap();
    for (arg, trace, tick) in seen.iter() {
        match arg.as_str() {
            Some("now" | "later" | "retried") => assert_eq!((trace, *tick), (&expected, false), "{arg}"),
            Some("plain") => assert_eq!((trace, *tick), (&None, false)),
            Some("tick") => assert_eq!((trace, *tick), (&None, true)),
            other => panic!("unexpected run {other:?}"),
        }
    }
    assert_eq!(seen.iter().filter(|(arg, ..)| *arg == json!("retried")).count(), 2, "both attempts");
    assert_eq!((TraceContext::current(), NamedRun::current()), (None, None), "outside a handler");
}

#[test]
fn a_bad_trace_context_is_a_typed_error() {
    assert!(matches!(
        TraceContext::new("00-abc-00f067aa0ba902b7-01", ""),
        Err(taskmanager::TraceContextError::Traceparent(_))
    ));
    let error = TraceContext::new(PARENT, "a=\u{e9}").unwrap_err();
    assert!(matches!(error, taskmanager::TraceContextError::Tracestate(_)));
    assert!(error.to_string().starts_with("invalid tracestate:"), "{error}");
}
