//! The end of a worker's life with a broker: a drain keeps the leases of
//! what still runs and hands back what never will; a shutdown that gives
//! up hands everything back at once.

use std::sync::Arc;
use std::time::Duration;

use super::claimer::BLOCK;
use super::in_flight::{by_stream, Entry, InFlight};
use super::pace::{back_off, Every};
use super::{Broker, GROUP};
use crate::pool::Pool;

impl Broker {
    /// After the manager stops running: claims nothing more, keeps the
    /// leases of the tasks still running here (a live worker's task is
    /// never re-run, however long its shutdown waits), hands back at once
    /// what the pool dropped unrun, and ends when it holds nothing, or when
    /// [`give_up`](Broker::give_up) handed everything back.
    pub(super) fn drain(
        &self,
        pool: &Arc<Pool>,
        in_flight: &InFlight,
        mut conn: Option<redis::Connection>,
        heartbeat: &mut Every,
    ) {
        let mut backoff = Duration::from_millis(100);
        loop {
            // Checked before connecting too: with Redis down, a claimer that
            // holds nothing would otherwise retry until its drain timed out.
            if in_flight.abandoned() || holds_nothing(in_flight) {
                return;
            }
            let Some(c) = self.connected(&mut conn, &pool.name, &mut backoff, &mut false) else { continue };
            let step = self.return_unrun(c, &pool.name, in_flight).and_then(|()| {
                if heartbeat.due() {
                    self.renew(c, &pool.name, in_flight)
                } else {
                    Ok(())
                }
            });
            if let Err(e) = step {
                log::warn!(
                    "taskmanager: broker error for module {} while draining: {e}; reconnecting",
                    pool.name
                );
                conn = None;
                back_off(&mut backoff);
                continue;
            }
            backoff = Duration::from_millis(100);
            let held = in_flight.held();
            if held.is_empty() && in_flight.returned.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
                return;
            }
            drop(in_flight.done.wait_timeout(held, BLOCK / 2).unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// Hands back the entries the pool dropped unrun, and frees their
    /// places.
    pub(super) fn return_unrun(
        &self,
        conn: &mut redis::Connection,
        module: &str,
        in_flight: &InFlight,
    ) -> redis::RedisResult<()> {
        let returned = in_flight.take_returned();
        if returned.is_empty() {
            return Ok(());
        }
        let entries: Vec<Entry> = returned.iter().map(|(entry, _)| entry.clone()).collect();
        let places: Vec<String> = returned.iter().filter_map(|(_, place)| place.clone()).collect();
        match self.hand_back(conn, module, &entries, &places) {
            Ok(_) => {
                in_flight.forget_places(&places);
                Ok(())
            }
            Err(e) => {
                // Tried again on the next connection, each entry with its
                // own place.
                in_flight.returned.lock().unwrap_or_else(|p| p.into_inner()).extend(returned);
                Err(e)
            }
        }
    }

    /// Hands `entries` back to the cluster (see `scripts::HAND_BACK`) and
    /// frees `places`; returns how many went back.
    pub(super) fn hand_back(
        &self,
        conn: &mut redis::Connection,
        module: &str,
        entries: &[Entry],
        places: &[String],
    ) -> redis::RedisResult<usize> {
        let mut back = 0;
        for (stream, ids) in by_stream(entries) {
            back += self
                .hand_back_script
                .key(stream)
                .key(self.ready_key(module))
                .arg(GROUP)
                .arg(&self.id)
                .arg(&ids)
                .invoke::<usize>(conn)?;
        }
        if !entries.is_empty() {
            log::warn!("taskmanager: handed back {back} task(s) of module {module} to the cluster");
        }
        if !places.is_empty() {
            redis::cmd("ZREM").arg(self.places_key(module)).arg(places).query::<i64>(conn)?;
        }
        Ok(back)
    }

    /// Every module's claims in flight, by module name.
    fn in_flights(&self) -> Vec<(Arc<str>, Arc<InFlight>)> {
        let modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        modules.iter().map(|(name, r)| (Arc::clone(name), Arc::clone(&r.in_flight))).collect()
    }

    /// A shutdown that stopped waiting: hands every task this process's
    /// claimers hold back to the cluster, now (other workers run them at
    /// once, without waiting for a lease), and makes the claimers end.
    /// A task still running here keeps running; if it finishes, its
    /// acknowledgement finds it handed back and stores nothing (its re-run
    /// elsewhere gives the one result). Returns how many went back.
    pub(crate) fn give_up(&self) -> usize {
        let held = self.in_flights();
        // First every claimer stops: a read it sent before may still
        // return entries (which it hands back itself), and would take the
        // copies handed back below if it were still reading.
        for (_, in_flight) in &held {
            in_flight.abandon();
        }
        for (_, in_flight) in &held {
            in_flight.wait_claimer_end(BLOCK + self.config.timeout);
        }
        let mut back = 0;
        for (module, in_flight) in held {
            // Tasks that ran are acknowledged, not handed back.
            self.ack_now(&module, &in_flight.stop_queueing());
            let (entries, places) = in_flight.take_all();
            if entries.is_empty() && places.is_empty() {
                continue;
            }
            match self.with_conn(|conn| self.hand_back(conn, &module, &entries, &places)) {
                Ok(n) => back += n,
                Err(e) => log::error!(
                    "taskmanager: could not hand back {} task(s) of module {module} ({e}); other workers take \
                     them over after the lease",
                    entries.len()
                ),
            }
        }
        back
    }
}

/// Whether a claimer has nothing left to do: no task of its runs or waits
/// here, and none waits to be handed back.
fn holds_nothing(in_flight: &InFlight) -> bool {
    in_flight.held().is_empty() && in_flight.returned.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
}
