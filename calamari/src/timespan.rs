//! The one .NET `TimeSpan` reader of the crate, as `TimeSpan.TryParse` reads one: `d`,
//! `[d.]hh:mm[:ss[.fffffff]]` or `d:hh:mm:ss[.fffffff]`, optionally negative; days up to
//! `TimeSpan.MaxValue`'s 10,675,199, hours below 24, minutes and seconds below 60, at most
//! seven fraction digits (100 ns ticks). `--scriptIsolationTimeout` (`isolation.rs`) and the
//! package lock expiration (`package_retention`) both read through [`parse`]; each decides
//! what a negative span means to it.

use std::time::Duration;

/// A parsed span: its length and whether it was written negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeSpan {
    /// The span written with a leading `-`.
    pub(crate) negative: bool,
    /// Its length.
    pub(crate) duration: Duration,
}

/// The largest day count a .NET `TimeSpan` holds.
const MAX_DAYS: u64 = 10_675_199;

/// Parses `text` (surrounding whitespace ignored); `None` when it is no `TimeSpan`.
pub(crate) fn parse(text: &str) -> Option<TimeSpan> {
    let text = text.trim();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let number = |s: &str, max: u64| -> Option<u64> {
        if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().filter(|n| *n <= max)
    };
    // The fraction of a second after the seconds: up to seven digits, in 100 ns ticks.
    let (main, ticks) = match text.rsplit_once('.') {
        Some((head, tail)) if head.contains(':') && !tail.contains(':') => {
            if tail.is_empty() || tail.len() > 7 || !tail.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (head, Some(format!("{tail:0<7}").parse::<u64>().ok()?))
        }
        _ => (text, None),
    };
    // Days before a '.' ([d.]hh:mm...) or as the first of four ':' fields (d:hh:mm:ss).
    let (days, clock) = match main.split_once('.') {
        Some((d, rest)) => (Some(number(d, MAX_DAYS)?), rest),
        None => (None, main),
    };
    let fields: Vec<&str> = clock.split(':').collect();
    let (days, h, m, s) = match (fields.as_slice(), days, ticks) {
        ([d], None, None) => (number(d, MAX_DAYS)?, 0, 0, 0),
        ([h, m], days, None) => (days.unwrap_or(0), number(h, 23)?, number(m, 59)?, 0),
        ([h, m, s], days, _) => (days.unwrap_or(0), number(h, 23)?, number(m, 59)?, number(s, 59)?),
        ([d, h, m, s], None, _) => (number(d, MAX_DAYS)?, number(h, 23)?, number(m, 59)?, number(s, 59)?),
        _ => return None,
    };
    let seconds = ((days * 24 + h) * 60 + m) * 60 + s;
    let duration = Duration::from_secs(seconds) + Duration::from_nanos(ticks.unwrap_or(0) * 100);
    Some(TimeSpan { negative: negative && !duration.is_zero(), duration })
}

/// A duration as a .NET TimeSpan prints it (`[d.]hh:mm:ss[.fffffff]`), as the messages show it.
pub(crate) fn format(duration: Duration) -> String {
    let total = duration.as_secs();
    let (days, h, m, s) = (total / 86_400, total / 3600 % 24, total / 60 % 60, total % 60);
    let mut text = if days > 0 { format!("{days}.{h:02}:{m:02}:{s:02}") } else { format!("{h:02}:{m:02}:{s:02}") };
    let ticks = duration.subsec_nanos() / 100;
    if ticks > 0 {
        text.push_str(&format!(".{ticks:07}"));
    }
    text
}
