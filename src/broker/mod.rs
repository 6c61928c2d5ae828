//! The Redis mode (feature `redis`): named tasks cross processes through
//! Redis streams, one per task name, read by a consumer group; a claimed
//! task enters its module's pool through `Target::dispatch`, like the
//! timer's. See `PROTOCOL.md`, "Redis", for the files, the key layout, the
//! scripts and why streams.
//!
//! - Submit: `XADD` the task (id, name, JSON arguments, reply channel) to
//!   its name's stream; the call returns once Redis has it.
//! - Claim (`claimer.rs`): a module's claimer reads only as many entries
//!   as the pool has free workers; each stays pending until acknowledged.
//! - Lease (`lease.rs`): the heartbeat resets the idle time of what a
//!   claimer holds; an entry idle past the lease (a dead holder) is taken
//!   over by a live one, so a live worker's long task is never re-run.
//! - Ack (`ticket.rs`, `outcomes.rs`): after the run, one script
//!   acknowledges, deletes the entry, stores the result and tells the
//!   submitter, whose listener (`listener.rs`) completes the handle.
//! - Schedules (`schedule.rs`, `firing.rs`; calendar ones `calendar.rs`):
//!   fired once cluster-wide by Redis's clock, whichever worker fires.

mod calendar;
mod calendar_tick;
mod claimer;
mod client;
mod cluster;
mod dead;
mod drain;
mod entries;
mod epoch;
mod firing;
mod in_flight;
mod keys;
mod lease;
mod listener;
mod listing;
mod locate;
mod lookup;
mod outcomes;
mod pace;
mod remote;
mod result;
mod retrying;
mod schedule;
mod scripts;
mod ticket;
mod unrunnable;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, Ordering::Relaxed};
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::err::{ConfigError, RemoteError, SubmitError};
use crate::pool::Pool;
use crate::retry::Retry;
use crate::runtime::Runtime;

/// What a named handler gets and gives: JSON in, JSON or an error out.
pub(crate) type Handler = Arc<dyn Fn(Value) -> Result<Value, RemoteError> + Send + Sync>;

pub use dead::DeadLetter;
pub use locate::{ClaimedTask, InStream};
pub use lookup::{Attempts, TaskLookup};
use remote::Place;
pub(crate) use remote::RemoteCell;
pub use result::MIN_RESULT_TTL;
use result::{decode_result, encode_result};
pub(crate) use schedule::Registration;

/// A broker's settings, from the manager's `Builder`.
#[derive(Clone, Debug)]
pub(crate) struct BrokerConfig {
    pub(crate) url: String,
    /// Prepended to every key, so several apps can share one Redis.
    pub(crate) prefix: String,
    /// How long a claimed task may go without its holder's heartbeat before
    /// another process takes it over.
    pub(crate) lease: Duration,
    /// How long a result is kept in Redis, for its submitter and for
    /// lookups by id (a task's own `ttl` field overrides it).
    pub(crate) result_ttl: Duration,
    /// The most a call to Redis may take (connect, or a reply).
    pub(crate) timeout: Duration,
    /// False for a process that only submits (and gets results): it never
    /// claims a task. Copied into `Broker::claims`.
    pub(crate) claims: bool,
    /// For `rediss://`: the PEM file of the CA to trust instead of the
    /// system's roots.
    pub(crate) ca_file: Option<PathBuf>,
    /// Deliveries after which a task whose workers keep dying is
    /// dead-lettered (`dead.rs`).
    pub(crate) max_deliveries: u32,
    /// How long a task of a name no live worker reads waits before it is
    /// dead-lettered (`unrunnable.rs`).
    pub(crate) unrunnable_after: Duration,
}

impl BrokerConfig {
    pub(crate) fn new(url: &str) -> Self {
        BrokerConfig {
            url: url.to_owned(),
            prefix: "taskmanager".to_owned(),
            lease: Duration::from_secs(30),
            result_ttl: Duration::from_secs(600),
            timeout: Duration::from_secs(5),
            claims: true,
            ca_file: None,
            max_deliveries: 3,
            unrunnable_after: Duration::from_secs(3600),
        }
    }
}

/// The consumer group every process reads a module's stream through.
const GROUP: &str = "taskmanager";

/// A module's handlers, and its pool, for the claimer.
struct Registered {
    pool: Arc<Pool>,
    handlers: HashMap<String, Handler>,
    /// Its claimer's streams, one per name, sorted: made at registration,
    /// so a claim step only compares a pointer (see `claimer::Streams`).
    streams: Arc<Vec<String>>,
    claiming: bool,
    /// What its claimer holds.
    in_flight: Arc<in_flight::InFlight>,
}

/// One manager's connection to the broker. See the module docs.
pub(crate) struct Broker {
    rt: Arc<Runtime>,
    client: redis::Client,
    config: BrokerConfig,
    /// This manager's name in the cluster: its consumer name and the
    /// suffix of its reply channel.
    id: String,
    /// Connections for submissions and acks, reused.
    idle: StdMutex<Vec<redis::Connection>>,
    modules: StdMutex<HashMap<Arc<str>, Registered>>,
    /// Handles waiting for results, by task id. Weak: a handle its user
    /// dropped waits for nothing, and its result is not settled.
    waiting: StdMutex<HashMap<String, Weak<RemoteCell>>>,
    /// The delayed tasks this manager sent, for its listing (`listing.rs`).
    delayed: StdMutex<listing::Delayed>,
    next_task: AtomicU64,
    ack_script: redis::Script,
    claim_script: redis::Script,
    submit_script: redis::Script,
    schedule_script: redis::Script,
    fire_script: redis::Script,
    recur_script: redis::Script,
    acquire_script: redis::Script,
    unqueue_script: redis::Script,
    renew_script: redis::Script,
    hold_script: redis::Script,
    hand_back_script: redis::Script,
    seen_script: redis::Script,
    leave_script: redis::Script,
    forget_script: redis::Script,
    claimed_script: redis::Script,
    /// Whether this process claims tasks (`Builder::submit_only`, undone by
    /// `run_worker`); read when claimers start.
    claims: AtomicBool,
    /// Cluster-wide caps on concurrent runs, by module name.
    caps: StdMutex<HashMap<Arc<str>, usize>>,
    /// Whether the result listener was started (see `ensure_listener`).
    listening: AtomicBool,
    /// Whether the scheduler thread was started (`firing.rs`).
    firing: AtomicBool,
    /// What this process knows of Redis's data (`epoch.rs`).
    epoch: StdMutex<epoch::Epoch>,
}

impl Broker {
    pub(crate) fn new(rt: Arc<Runtime>, config: BrokerConfig) -> Result<Broker, ConfigError> {
        let client = client::open(&config)?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let id = format!("{}-{:x}-{:x}", hostname(), std::process::id(), nanos & 0xffff_ffff_ffff);
        Ok(Broker {
            ack_script: redis::Script::new(&outcomes::ack_script()),
            claim_script: redis::Script::new(scripts::CLAIM),
            submit_script: redis::Script::new(scripts::SUBMIT),
            schedule_script: redis::Script::new(scripts::SCHEDULE),
            fire_script: redis::Script::new(scripts::FIRE),
            recur_script: redis::Script::new(scripts::RECUR),
            acquire_script: redis::Script::new(scripts::ACQUIRE),
            unqueue_script: redis::Script::new(&format!("{}{}", outcomes::TALLY, scripts::UNQUEUE)),
            renew_script: redis::Script::new(scripts::RENEW),
            hold_script: redis::Script::new(lease::HOLD),
            hand_back_script: redis::Script::new(scripts::HAND_BACK),
            seen_script: redis::Script::new(&cluster::seen_script()),
            leave_script: redis::Script::new(&cluster::leave_script()),
            forget_script: redis::Script::new(scripts::FORGET),
            claimed_script: redis::Script::new(remote::CLAIMED),
            caps: StdMutex::new(HashMap::new()),
            listening: AtomicBool::new(false),
            claims: AtomicBool::new(config.claims),
            firing: AtomicBool::new(false),
            epoch: StdMutex::default(),
            rt,
            client,
            config,
            id,
            idle: StdMutex::new(Vec::new()),
            modules: StdMutex::new(HashMap::new()),
            waiting: StdMutex::new(HashMap::new()),
            delayed: StdMutex::default(),
            next_task: AtomicU64::new(0),
        })
    }

    /// Registers `handler` as `name` on `pool`'s module; once the manager
    /// runs, this process claims the module's tasks.
    pub(crate) fn register(self: &Arc<Self>, pool: &Arc<Pool>, name: &str, handler: Handler) {
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        let entry = modules.entry(Arc::clone(&pool.name)).or_insert_with(|| Registered {
            pool: Arc::clone(pool),
            handlers: HashMap::new(),
            streams: Arc::default(),
            claiming: false,
            in_flight: Arc::default(),
        });
        entry.handlers.insert(name.to_owned(), handler);
        let mut names: Vec<&String> = entry.handlers.keys().collect();
        names.sort();
        entry.streams = Arc::new(names.into_iter().map(|name| self.stream_key(&pool.name, name)).collect());
        drop(modules);
        if self.rt.life.phase() == crate::lifecycle::Phase::Running {
            self.start_claimers();
        }
    }

    /// Makes this process claim tasks, or not, from the manager's start
    /// (see `Builder::submit_only`).
    pub(crate) fn set_claims(self: &Arc<Self>, claims: bool) {
        self.claims.store(claims, Ordering::SeqCst);
        if claims && self.rt.life.phase() == crate::lifecycle::Phase::Running {
            self.start_claimers();
            self.start_firing();
        }
    }

    /// Caps how many of `module`'s tasks run at once across every process
    /// (this process's claimer honours it; every process should set the
    /// same cap).
    pub(crate) fn set_global_cap(&self, module: &Arc<str>, cap: usize) {
        self.caps.lock().unwrap_or_else(|p| p.into_inner()).insert(Arc::clone(module), cap);
    }

    fn global_cap(&self, module: &str) -> Option<usize> {
        self.caps.lock().unwrap_or_else(|p| p.into_inner()).get(module).copied()
    }

    fn handler(&self, module: &str, name: &str) -> Option<Handler> {
        let modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        modules.get(module)?.handlers.get(name).map(Arc::clone)
    }

    /// The streams `module`'s claimer reads: one per registered name.
    fn streams(&self, module: &str) -> Arc<Vec<String>> {
        let modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        modules.get(module).map(|r| Arc::clone(&r.streams)).unwrap_or_default()
    }

    /// A new task id and its handle's cell (see `RemoteCell::new`),
    /// registered as waiting for a result before the task is sent (the
    /// result may come back at once).
    fn new_waiting(
        self: &Arc<Self>,
        pool: &Arc<Pool>,
        name: &str,
        label: Arc<str>,
    ) -> Result<(String, Arc<RemoteCell>), SubmitError> {
        if !self.rt.life.phase().accepts() {
            return Err(SubmitError::ShutDown);
        }
        self.ensure_listener();
        let seq = self.next_task.fetch_add(1, Relaxed);
        let task = format!("{}-{seq}", self.id);
        let cell = Arc::new(RemoteCell::new(self, pool, task.clone(), name, label));
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).insert(task.clone(), Arc::downgrade(&cell));
        Ok((task, cell))
    }

    /// Redis did not take `task` (the call `what`): it waits no more.
    fn not_sent(&self, task: &str, what: &str, e: &redis::RedisError) -> SubmitError {
        self.stop_waiting(task);
        SubmitError::Broker(self.call_error(what, e))
    }

    /// `task` waits no more: not sent, or cancelled.
    fn stop_waiting(&self, task: &str) {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(task);
        self.forget_delayed(task);
    }

    /// Deletes a stream entry no worker has claimed; true if it did.
    fn unqueue(&self, stream: &str, entry: &str) -> bool {
        let removed = self.with_conn(|conn| {
            self.unqueue_script.key(stream).arg(GROUP).arg(entry).arg(&self.config.prefix).invoke::<i64>(conn)
        });
        removed.is_ok_and(|n| n == 1)
    }

    /// Sends a named task to `module`'s stream; returns its handle's cell
    /// (named `label`) once Redis has it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn submit(
        self: &Arc<Self>,
        pool: &Arc<Pool>,
        name: &str,
        label: Arc<str>,
        args: &Value,
        retry: Option<&Retry>,
        ttl: Option<Duration>,
        trace: Option<&crate::trace_context::TraceContext>,
    ) -> Result<Arc<RemoteCell>, SubmitError> {
        let module: &str = &pool.name;
        let (task, cell) = self.new_waiting(pool, name, Arc::clone(&label))?;
        let (args, stream, reply) = (args.to_string(), cell.stream(), self.reply_channel());
        let retry = retry.map(retrying::encode);
        let sent = self.with_conn(|conn| {
            let mut call = self.submit_script.key(stream);
            call.key(self.ready_key(module));
            call.arg("id").arg(&task).arg("name").arg(name).arg("args").arg(&args).arg("reply").arg(&reply);
            if let Some(retry) = &retry {
                call.arg("retry").arg(retry);
            }
            if let Some(ttl) = ttl {
                call.arg("ttl").arg(pace::millis(ttl));
            }
            // Its `name=` for the worker's events, its trace context for its tracer.
            call.arg((*label != *name).then_some(("label", &*label)));
            call.arg(crate::trace_context::TraceContext::fields(trace));
            call.invoke::<String>(conn)
        });
        let entry = sent.map_err(|e| self.not_sent(&task, &format!("XADD to {stream}"), &e))?;
        cell.set_place(Place::Stream { entry });
        Ok(cell)
    }

    /// Starts the result listener and a claimer for each module with
    /// handlers: at the manager's start, or on a registration after it.
    pub(crate) fn start(self: &Arc<Self>) {
        self.ensure_listener();
        // Claimers first: the scheduler's first step lists this process
        // as a worker if it claims.
        self.start_claimers();
        self.start_firing();
    }

    /// Starts the result listener unless it runs: at the manager's start,
    /// or at the first submission, so that a handle of a manager never
    /// started still gets its result (another process runs the task).
    pub(super) fn ensure_listener(self: &Arc<Self>) {
        if self.listening.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = Arc::clone(self);
        if let Err(e) = self.rt.threads.spawn("taskmanager-results", move || me.listen()) {
            self.listening.store(false, Ordering::SeqCst);
            log::error!("taskmanager: could not start the broker's result listener: {e}");
        }
    }

    fn start_claimers(self: &Arc<Self>) {
        if !self.claims.load(Ordering::SeqCst) {
            return;
        }
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        for registered in modules.values_mut().filter(|r| !r.claiming) {
            let me = Arc::clone(self);
            let pool = Arc::clone(&registered.pool);
            let in_flight = Arc::clone(&registered.in_flight);
            in_flight.set_claiming(true);
            let ends = Arc::clone(&in_flight);
            let spawned = self.rt.threads.spawn("taskmanager-claimer", move || {
                me.claim(&pool, &in_flight);
                in_flight.set_claiming(false);
            });
            match spawned {
                Ok(()) => registered.claiming = true,
                Err(e) => {
                    ends.set_claiming(false);
                    log::error!(
                        "taskmanager: could not start a claimer for module {}: {e}",
                        registered.pool.name
                    );
                }
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "host".to_owned(), |h| h.trim().to_owned())
}
