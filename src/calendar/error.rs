//! What can be wrong with a calendar schedule: an expression or a zone name.

use std::fmt;

/// A field of a cron expression, as an error names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CronField {
    /// The optional first field of a six-field expression (0-59).
    Second,
    /// Minutes (0-59).
    Minute,
    /// Hours (0-23).
    Hour,
    /// Day of the month (1-31, `L`, `W`).
    DayOfMonth,
    /// Month (1-12 or `JAN`-`DEC`).
    Month,
    /// Day of the week (0-7 or `SUN`-`SAT`, `L`, `#`).
    DayOfWeek,
}

impl CronField {
    /// The fields of a five-field expression, in order; a six-field one has
    /// [`CronField::Second`] in front.
    pub(crate) const FIVE: [CronField; 5] =
        [CronField::Minute, CronField::Hour, CronField::DayOfMonth, CronField::Month, CronField::DayOfWeek];

    /// The field at `index` of an expression with `count` (5 or 6) fields.
    pub(crate) fn at(count: usize, index: usize) -> CronField {
        if count == 6 {
            if index == 0 {
                return CronField::Second;
            }
            return CronField::FIVE[index - 1];
        }
        CronField::FIVE[index]
    }

    /// What the field accepts, for error messages.
    pub(crate) fn accepts(self) -> &'static str {
        match self {
            CronField::Second | CronField::Minute => "0-59",
            CronField::Hour => "0-23",
            CronField::DayOfMonth => "1-31, L (last day), nW (nearest weekday), LW",
            CronField::Month => "1-12 or JAN-DEC",
            CronField::DayOfWeek => "0-7 or SUN-SAT (0 and 7 are Sunday), nL (last), n#k (k-th)",
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CronField::Second => "second",
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day of month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day of week",
        })
    }
}

/// Why a [`Cron`](crate::Cron) could not be made: returned by
/// [`Cron::parse`](crate::Cron::parse) and [`Cron::zone`](crate::Cron::zone),
/// never later.
///
/// ```
/// use taskmanager::{Cron, CronError, CronField};
///
/// let err = Cron::parse("0 25 * * *").unwrap_err();
/// assert!(matches!(err, CronError::Field { field: CronField::Hour, .. }));
/// assert!(err.to_string().starts_with("hour field '25': "), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CronError {
    /// Not 5 fields (minute to day of week) or 6 (with seconds first).
    FieldCount {
        /// How many fields the expression has.
        found: usize,
    },
    /// One field is invalid: a value out of range, a bad step or range, a
    /// name that belongs to another field.
    Field {
        /// Which field.
        field: CronField,
        /// The field as written.
        text: String,
        /// Why, and what the field accepts.
        reason: String,
    },
    /// The parser refused the expression with no single field at fault
    /// (kept for parser rules across fields; none exists today).
    Expression {
        /// The expression as read.
        expression: String,
        /// Why.
        reason: String,
    },
    /// An `@` word that is not `@yearly`, `@annually`, `@monthly`,
    /// `@weekly`, `@daily`, `@midnight` or `@hourly`.
    UnknownMacro {
        /// The word as written.
        name: String,
    },
    /// Every field is valid, but no date has them all: `0 0 30 2 *`
    /// (February 30th), `0 0 31 4,6 *`. Refused rather than searched for
    /// ever.
    NeverFires {
        /// The expression as written.
        expression: String,
    },
    /// The zone is not in the IANA time zone database this crate bundles.
    UnknownZone {
        /// The name as given.
        zone: String,
    },
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CronError::FieldCount { found } => write!(
                f,
                "a cron expression has 5 fields (minute hour day-of-month month day-of-week) \
                 or 6 (a second field first), or is an @macro; this one has {found}"
            ),
            CronError::Field { field, text, reason } => write!(f, "{field} field '{text}': {reason}"),
            CronError::Expression { expression, reason } => write!(f, "'{expression}': {reason}"),
            CronError::UnknownMacro { name } => write!(
                f,
                "unknown macro '{name}': the macros are @yearly, @annually, @monthly, @weekly, \
                 @daily, @midnight and @hourly"
            ),
            CronError::NeverFires { expression } => {
                write!(f, "'{expression}' matches no date (like February 30th): it would never run")
            }
            CronError::UnknownZone { zone } => {
                write!(f, "unknown time zone '{zone}': give an IANA name such as 'Europe/Berlin' or 'UTC'")
            }
        }
    }
}

impl std::error::Error for CronError {}
