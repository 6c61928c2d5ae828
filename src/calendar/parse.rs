//! Reading a cron expression. croner parses; around it, this file expands
//! the macros croner lacks, counts the fields, keeps each name in its own
//! field (croner would read `MON` in the month field as January), traces
//! croner's field-less errors to the field at fault, and refuses
//! expressions that match no date.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use croner::parser::{CronParser, Seconds, Year};
use croner::CronComponent;
use jiff::civil::date;

use super::error::{CronError, CronField};

/// The `@` words and what they stand for (Vixie cron's set, less
/// `@reboot`, which is no time).
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

const MONTHS: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A parsed expression.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    /// croner's form: matches civil (wall-clock) times.
    pub(crate) pattern: croner::Cron,
    /// Whether the hour field is every hour: such an expression runs by
    /// real time at DST transitions (see `policy.rs`).
    pub(crate) every_hour: bool,
}

/// The last year a pattern matches: past the manager's clock (July 2554),
/// so every schedule that can run is found. croner keeps one byte per year
/// up to its own horizon, 5000, in every pattern: 5 KB a schedule, most of
/// what one held; capped here it is 2.6 KB, and patterns are shared.
pub(crate) const LAST_YEAR: u16 = 2600;

/// Parses `expression` (5 or 6 fields, or a macro): a pattern shared with
/// every other live `Cron` of the same expression.
pub(crate) fn parse(expression: &str) -> Result<Arc<Parsed>, CronError> {
    static SHARED: OnceLock<Mutex<HashMap<String, Weak<Parsed>>>> = OnceLock::new();
    let shared = SHARED.get_or_init(Mutex::default);
    let key = expression.trim();
    if let Some(parsed) = lock(shared).get(key).and_then(Weak::upgrade) {
        return Ok(parsed);
    }
    let parsed = Arc::new(parse_new(key)?);
    let mut shared = lock(shared);
    // Forget the dead ones when the map has doubled since the last look.
    if shared.len() >= 64 && shared.len().is_power_of_two() {
        shared.retain(|_, parsed| parsed.strong_count() > 0);
    }
    shared.insert(key.to_owned(), Arc::downgrade(&parsed));
    Ok(parsed)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// croner's bits of a field (its `component.rs`'s `NONE_BIT`, `ALL_BIT`,
/// which it does not export): no feature, and "this value matches".
const NO_FEATURE: u8 = 0;
const MATCHES: u8 = 1;

/// Every year from 1 to [`LAST_YEAR`], as croner's year field.
fn years() -> CronComponent {
    static YEARS: OnceLock<CronComponent> = OnceLock::new();
    YEARS
        .get_or_init(|| {
            let mut years = CronComponent::new(1, LAST_YEAR, NO_FEATURE, 0);
            for year in 1..=LAST_YEAR {
                years.set_bit(year, MATCHES).expect("in range");
            }
            years
        })
        .clone()
}

fn parse_new(expression: &str) -> Result<Parsed, CronError> {
    let text = expand_macro(expression.trim())?;
    let fields: Vec<&str> = text.split_whitespace().collect();
    let count = fields.len();
    if !(5..=6).contains(&count) {
        return Err(CronError::FieldCount { found: count });
    }
    for (index, text) in fields.iter().enumerate() {
        check_words(CronField::at(count, index), text)?;
    }
    let mut pattern = parser().parse(text).map_err(|_| blame(&fields))?;
    // The year field is disallowed, so croner's is every year to 5000.
    pattern.pattern.years = years();
    // The Gregorian calendar repeats every 400 years, so an expression that
    // matches nothing from 2000 to the horizon (2600) never does.
    if pattern.find_next_occurrence(&date(2000, 1, 1).at(0, 0, 0, 0), true).is_err() {
        return Err(CronError::NeverFires { expression: expression.trim().to_string() });
    }
    let every_hour = pattern.pattern.hours.values().len() == 24;
    Ok(Parsed { pattern, every_hour })
}

/// croner's parser as we use it: the seconds field optional (first), no
/// year field, POSIX weekdays (0 and 7 are Sunday), day of month OR day of
/// week when both are restricted (`+` in front of the day of week asks for
/// AND), steps only as `*/n` or `a-b/n`.
fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build()
}

/// The expression a macro stands for, or the expression itself.
fn expand_macro(expression: &str) -> Result<&str, CronError> {
    if !expression.starts_with('@') {
        return Ok(expression);
    }
    MACROS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(expression))
        .map(|(_, fields)| *fields)
        .ok_or_else(|| CronError::UnknownMacro { name: expression.to_string() })
}

/// Refuses a word (a run of letters) that is not a name or letter of this
/// field.
fn check_words(field: CronField, text: &str) -> Result<(), CronError> {
    let upper = text.to_ascii_uppercase();
    for word in upper.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty()) {
        if !is_word_of(field, word) {
            let reason =
                format!("'{word}' is not a name or letter of this field (accepts {})", field.accepts());
            return Err(CronError::Field { field, text: text.to_string(), reason });
        }
    }
    // croner takes a lone `L` in the day of week and never matches it.
    if field == CronField::DayOfWeek && upper.trim_start_matches('+').split(',').any(|item| item == "L") {
        let reason = String::from("'L' here needs a weekday before it: 5L or FRIL (last Friday)");
        return Err(CronError::Field { field, text: text.to_string(), reason });
    }
    Ok(())
}

/// Whether `word` (upper case) may stand in `field`.
fn is_word_of(field: CronField, word: &str) -> bool {
    let weekday = |w: &str| WEEKDAYS.contains(&w);
    match field {
        CronField::Second | CronField::Minute | CronField::Hour => false,
        CronField::DayOfMonth => matches!(word, "L" | "W" | "LW"),
        CronField::Month => MONTHS.contains(&word),
        // `FRIL`, the last Friday, is `5L` with a name.
        CronField::DayOfWeek => word == "L" || weekday(word) || word.strip_suffix('L').is_some_and(weekday),
    }
}

/// The error for an expression croner refused: croner's messages do not
/// name the field, so each field is parsed alone (the others `*`) and the
/// first one croner refuses is named, with croner's reason.
fn blame(fields: &[&str]) -> CronError {
    let count = fields.len();
    for (index, text) in fields.iter().enumerate() {
        let probe: Vec<&str> = (0..count).map(|i| if i == index { *text } else { "*" }).collect();
        if let Err(err) = parser().parse(&probe.join(" ")) {
            let field = CronField::at(count, index);
            let reason = format!("{} (accepts {})", croner_reason(&err), field.accepts());
            return CronError::Field { field, text: text.to_string(), reason };
        }
    }
    // croner has no rule across fields, so one field alone always fails;
    // should a later version add one, the whole expression is named.
    let reason = match parser().parse(&fields.join(" ")) {
        Err(err) => croner_reason(&err),
        Ok(_) => String::from("refused by the parser"),
    };
    CronError::Expression { expression: fields.join(" "), reason }
}

/// croner's message without its category prefix.
fn croner_reason(err: &croner::errors::CronError) -> String {
    let message = err.to_string();
    let message = message.split_once(": ").map_or(message.as_str(), |(_, rest)| rest);
    message.trim_end_matches('.').replace("CronPattern contains ", "").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_error(expression: &str) -> (CronField, String) {
        match parse(expression) {
            Err(CronError::Field { field, text, .. }) => (field, text),
            other => panic!("{expression}: expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field_at_fault() {
        assert_eq!(field_error("60 * * * *"), (CronField::Minute, "60".into()));
        assert_eq!(field_error("* 24 * * *"), (CronField::Hour, "24".into()));
        assert_eq!(field_error("* * 0 * *"), (CronField::DayOfMonth, "0".into()));
        assert_eq!(field_error("* * * 13 *"), (CronField::Month, "13".into()));
        assert_eq!(field_error("* * * * 8"), (CronField::DayOfWeek, "8".into()));
        assert_eq!(field_error("61 * * * * *"), (CronField::Second, "61".into()));
        assert_eq!(field_error("0 61 * * * *"), (CronField::Minute, "61".into()));
        assert_eq!(field_error("*/0 * * * *"), (CronField::Minute, "*/0".into()));
        assert_eq!(field_error("* 5-1 * * *"), (CronField::Hour, "5-1".into()));
        assert_eq!(field_error("* * * * 1%2"), (CronField::DayOfWeek, "1%2".into()));
    }

    #[test]
    fn names_belong_to_their_own_field() {
        // croner alone reads these as January and Monday.
        assert_eq!(field_error("0 0 * MON *"), (CronField::Month, "MON".into()));
        assert_eq!(field_error("0 0 * * JAN"), (CronField::DayOfWeek, "JAN".into()));
        assert_eq!(field_error("0 0 L * L5"), (CronField::DayOfWeek, "L5".into()));
        assert_eq!(field_error("0 0 15X * *"), (CronField::DayOfMonth, "15X".into()));
        assert_eq!(field_error("0 0 * * MONDAY"), (CronField::DayOfWeek, "MONDAY".into()));
        assert_eq!(field_error("0 0 * * L"), (CronField::DayOfWeek, "L".into()));
        assert_eq!(field_error("0 0 1 * +1,L"), (CronField::DayOfWeek, "+1,L".into()));
        assert!(parse("0 0 * jan-Mar mon-FRI").is_ok(), "names are case-insensitive");
        assert_eq!(
            parse("0 0 * * FRIL").unwrap().pattern.pattern,
            parse("0 0 * * 5L").unwrap().pattern.pattern
        );
    }

    #[test]
    fn the_reason_says_what_the_field_accepts() {
        let err = parse("0 0 * * 9").unwrap_err().to_string();
        assert!(err.starts_with("day of week field '9': number out of bounds (accepts 0-7"), "{err}");
    }

    #[test]
    fn field_count_and_macros() {
        assert_eq!(parse("").unwrap_err(), CronError::FieldCount { found: 0 });
        assert_eq!(parse("* * * *").unwrap_err(), CronError::FieldCount { found: 4 });
        // No year field: seven fields are refused.
        assert_eq!(parse("0 0 0 1 1 * 2030").unwrap_err(), CronError::FieldCount { found: 7 });
        assert_eq!(parse("@reboot").unwrap_err(), CronError::UnknownMacro { name: "@reboot".into() });
        for (name, fields) in MACROS {
            let by_macro = parse(&name.to_uppercase()).unwrap().pattern.pattern.clone();
            assert_eq!(by_macro, parse(fields).unwrap().pattern.pattern, "{name}");
        }
    }

    #[test]
    fn an_expression_matching_no_date_is_refused() {
        for expression in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 2 +MON"] {
            assert!(matches!(parse(expression), Err(CronError::NeverFires { .. })), "{expression}");
        }
        // Rare but real: February 29th that is a Monday (next 2044).
        assert!(parse("0 0 29 2 +MON").is_ok());
    }

    #[test]
    fn every_hour_is_read_from_the_hour_set() {
        for (expression, every_hour) in [
            ("0 * * * *", true),
            ("*/5 */1 * * *", true),
            ("0 0-23 * * *", true),
            ("@hourly", true),
            ("0 */2 * * *", false),
            ("30 2 * * *", false),
            ("0 0-22 * * *", false),
        ] {
            assert_eq!(parse(expression).unwrap().every_hour, every_hour, "{expression}");
        }
    }

    #[test]
    fn one_pattern_is_shared_by_equal_expressions_and_matches_to_the_horizon() {
        let a = parse("17 3 * * MON").unwrap();
        let b = parse("  17 3 * * MON ").unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the same expression shares its pattern");
        assert!(!Arc::ptr_eq(&a, &parse("18 3 * * MON").unwrap()));
        let years = &a.pattern.pattern.years;
        assert_eq!(years.is_bit_set(2554, MATCHES).ok(), Some(true), "the clock's last year");
        assert_eq!(years.is_bit_set(LAST_YEAR, MATCHES).ok(), Some(true));
        // Dropped by every holder: parsed again, not kept.
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(weak.upgrade().is_none());
    }
}
