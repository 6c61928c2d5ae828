//! Calendar schedules through the whole stack, with both clocks moved by
//! hand (`ManualClock`): cron tasks at their wall-clock times, the misfire
//! policies after a suspend, a wall clock stepped back, a one-shot at a
//! date, and the schedules that are refused.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{eventually, ms};
use taskmanager::{
    Cron, CronError, Event, ManualClock, Misfire, Pacing, Recurrence, RecurringHandle, SubmitError,
    TaskManager,
};

const SEC: Duration = Duration::from_secs(1);

/// 2026-01-05T08:59:00Z, a Monday, plus `secs`.
fn monday(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_603_540 + secs)
}

/// A started manager on `clock`, and the events it tells.
fn manager(clock: &ManualClock) -> (TaskManager, Arc<Mutex<Vec<Event>>>) {
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = Arc::clone(&events);
    let manager = TaskManager::builder()
        .clock(clock)
        .listener(move |e: &Event| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    manager.start_thread().unwrap();
    (manager, events)
}

/// Waits until `handle` has `runs` runs, then checks no more came.
fn assert_runs(handle: &RecurringHandle, runs: u64) {
    assert!(eventually(|| handle.runs() >= runs), "expected {runs} runs, have {}", handle.runs());
    std::thread::sleep(ms(30));
    assert_eq!(handle.runs(), runs);
}

fn cron(expression: &str) -> Cron {
    Cron::parse(expression).unwrap()
}

#[test]
fn a_cron_task_runs_at_its_wall_clock_times_and_lists_the_next_with_its_zone() {
    let clock = ManualClock::starting_at(monday(0));
    let (manager, _) = manager(&clock);
    let berlin = cron("0 10 * * MON-FRI").zone("Europe/Berlin").unwrap(); // 09:00Z in winter
    let handle = manager.schedule_recurring(Recurrence::cron(berlin), || ()).unwrap();
    let listed = manager.tasks();
    assert_eq!(listed.len(), 1);
    let info = &listed[0];
    assert_eq!(
        (info.cron.as_deref(), info.zone.as_deref()),
        (Some("0 10 * * MON-FRI"), Some("Europe/Berlin"))
    );
    assert_eq!(info.next_run, Some(monday(60)), "09:00Z = 10:00 in Berlin");
    assert_eq!(info.interval, None, "a calendar task has no interval");
    clock.advance(59 * SEC);
    assert_runs(&handle, 0);
    clock.advance(SEC);
    assert_runs(&handle, 1);
    // Tuesday 09:00Z next, a day on.
    assert!(eventually(|| manager.tasks()[0].next_run == Some(monday(60 + 86_400))));
    clock.advance(Duration::from_secs(86_400));
    assert_runs(&handle, 2);
    // Friday's run, then Monday's: the weekend has none.
    clock.advance(Duration::from_secs(3 * 86_400));
    assert_runs(&handle, 3);
    assert!(
        eventually(|| manager.tasks()[0].next_run == Some(monday(60 + 7 * 86_400))),
        "{:?}",
        manager.tasks()
    );
    assert_eq!(
        (handle.skipped_ticks(), handle.coalesced_ticks()),
        (0, 2),
        "Wed and Thu folded into Fri's run"
    );
}

/// A task every 10 s (`*/10` in the seconds field), started at 08:59:05Z,
/// runs for 08:59:10; then the machine sleeps 35 s (the wall clock jumps,
/// the monotonic one does not): ticks 20, 30 and 40 pass unrun.
fn after_a_suspend(recurrence: Recurrence) -> (RecurringHandle, Arc<Mutex<Vec<Event>>>, ManualClock) {
    let clock = ManualClock::starting_at(monday(5));
    let (manager, events) = manager(&clock);
    let handle = manager.schedule_recurring(recurrence, || ()).unwrap();
    clock.advance(5 * SEC);
    assert_runs(&handle, 1);
    clock.set_wall(monday(45));
    std::mem::forget(manager); // kept running for the caller's checks
    (handle, events, clock)
}

fn told(events: &Mutex<Vec<Event>>) -> Vec<String> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Skipped { .. } | Event::Coalesced { .. }))
        .map(ToString::to_string)
        .collect()
}

#[test]
fn after_a_suspend_coalesce_runs_once_for_the_ticks_that_passed() {
    let (handle, events, _clock) = after_a_suspend(Recurrence::cron(cron("*/10 * * * * *")));
    assert_runs(&handle, 2);
    assert_eq!((handle.coalesced_ticks(), handle.skipped_ticks()), (2, 0));
    assert!(told(&events).iter().any(|e| e.ends_with("ran once late for 3 tick(s)")), "{:?}", told(&events));
}

#[test]
fn after_a_suspend_skip_with_a_grace_runs_nothing_late_and_waits_for_the_next_tick() {
    let recurrence = Recurrence::cron(cron("*/10 * * * * *")).misfire(Misfire::Skip).grace(2 * SEC);
    let (handle, events, clock) = after_a_suspend(recurrence);
    assert_runs(&handle, 1);
    assert!(eventually(|| handle.skipped_ticks() == 3), "{}", handle.skipped_ticks());
    assert!(told(&events).iter().any(|e| e.ends_with("skipped 3 tick(s)")), "{:?}", told(&events));
    clock.advance(5 * SEC); // 08:59:50
    assert_runs(&handle, 2);
}

#[test]
fn after_a_suspend_catch_up_runs_the_latest_ticks_one_after_another() {
    let recurrence = Recurrence::cron(cron("*/10 * * * * *")).misfire(Misfire::CatchUp { max: 2 });
    let (handle, _, _clock) = after_a_suspend(recurrence);
    assert_runs(&handle, 3);
    assert_eq!(handle.skipped_ticks(), 1, "tick 20 is older than the latest two");
}

#[test]
fn an_interval_task_keeps_its_monotonic_grid_through_a_wall_clock_step() {
    let clock = ManualClock::starting_at(monday(0));
    let (manager, _) = manager(&clock);
    let handle = manager.schedule_recurring(Recurrence::every(10 * SEC), || ()).unwrap();
    clock.set_wall(monday(3600));
    assert_runs(&handle, 0);
    clock.advance(10 * SEC);
    assert_runs(&handle, 1);
}

#[test]
fn a_wall_clock_stepped_back_delays_a_calendar_run_to_its_time() {
    let clock = ManualClock::starting_at(monday(0));
    let (manager, _) = manager(&clock);
    let handle = manager.schedule_recurring(Recurrence::cron(cron("0 9 * * *")), || ()).unwrap();
    clock.set_wall(monday(0) - Duration::from_secs(3600)); // back an hour: 07:59
    clock.advance(60 * SEC);
    assert_runs(&handle, 0);
    clock.advance(Duration::from_secs(3600) - SEC);
    assert_runs(&handle, 0);
    clock.advance(SEC);
    assert_runs(&handle, 1);
}

#[test]
fn a_one_shot_at_a_date_follows_the_wall_clock() {
    let clock = ManualClock::starting_at(monday(0));
    let (manager, _) = manager(&clock);
    let at = manager.schedule_task_at(monday(3600), || "at nine").unwrap();
    assert_eq!(manager.tasks()[0].next_run, Some(monday(3600)));
    clock.advance(Duration::from_secs(1800));
    assert!(!at.wait_timeout(ms(30)));
    // The machine slept through it: the wall clock jumps past its time.
    clock.set_wall(monday(3700));
    assert_eq!(at.join_timeout(common::SOON).unwrap(), "at nine");
    // A time that has passed runs at once.
    let late = manager.schedule_task_at(monday(0), || "late").unwrap();
    assert_eq!(late.join_timeout(common::SOON).unwrap(), "late");
}

#[test]
fn pause_resume_and_cancel_work_on_a_calendar_task() {
    let clock = ManualClock::starting_at(monday(0));
    let (manager, _) = manager(&clock);
    let handle = manager.schedule_recurring(Recurrence::cron(cron("* * * * *")), || ()).unwrap();
    assert!(handle.pause());
    clock.advance(60 * SEC);
    assert!(eventually(|| handle.skipped_ticks() == 1));
    assert_runs(&handle, 0);
    assert!(handle.resume());
    clock.advance(60 * SEC);
    assert_runs(&handle, 1);
    assert!(handle.cancel());
    clock.advance(60 * SEC);
    assert_runs(&handle, 1);
    assert!(eventually(|| manager.tasks().is_empty()));
}

#[test]
fn schedules_that_cannot_work_are_refused_at_the_call_with_the_setting_named() {
    let manager = TaskManager::new();
    let refused = |recurrence: Recurrence| match manager.schedule_recurring(recurrence, || ()) {
        Err(SubmitError::InvalidSchedule { reason }) => reason,
        other => panic!("accepted: {other:?}"),
    };
    assert!(
        refused(Recurrence::cron(cron("* * * * *")).misfire(Misfire::CatchUp { max: 0 })).contains("CatchUp")
    );
    assert!(refused(Recurrence::cron(cron("* * * * *")).pacing(Pacing::FixedDelay)).contains("FixedDelay"));
    assert!(
        matches!(Cron::parse("0 0 31 2 *"), Err(CronError::NeverFires { .. })),
        "February 31st never comes"
    );
    // No time left in the clock's range (it ends in July 2554).
    let clock = ManualClock::starting_at(UNIX_EPOCH + Duration::from_secs(18_446_000_000));
    let late = TaskManager::builder().clock(&clock).build().unwrap();
    match late.schedule_recurring(Recurrence::cron(cron("0 0 1 1 *")), || ()) {
        Err(SubmitError::InvalidSchedule { reason }) => assert!(reason.contains("0 0 1 1 *"), "{reason}"),
        other => panic!("accepted: {other:?}"),
    }
    let daily = manager.schedule_recurring(Recurrence::cron(cron("0 0 * * *")), || ()).unwrap();
    let err = daily.set_interval(SEC).unwrap_err();
    assert!(matches!(&err, SubmitError::InvalidSchedule { reason } if reason.contains("interval")), "{err}");
}

#[test]
fn a_paused_calendar_task_skips_what_passes_while_paused_even_when_it_would_coalesce() {
    let clock = ManualClock::starting_at(monday(0)); // 08:59
    let (manager, _) = manager(&clock);
    let handle = manager.schedule_recurring(Recurrence::cron(cron("* * * * *")), || ()).unwrap();
    assert!(handle.pause());
    // An hour passes on the wall clock alone: ticks 09:00 to 09:59.
    clock.set_wall(monday(3600));
    assert!(eventually(|| handle.skipped_ticks() == 60), "{}", handle.skipped_ticks());
    assert_runs(&handle, 0);
    assert_eq!(handle.coalesced_ticks(), 0);
    assert!(handle.resume());
    clock.advance(60 * SEC); // 10:00
    assert_runs(&handle, 1);
    assert_eq!(handle.skipped_ticks(), 60, "nothing caught up on resume");
    drop(manager);
}
