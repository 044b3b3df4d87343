//! The pieces of .NET number and date parsing/formatting that filters rely on, with
//! en-US culture semantics (the conformance vectors assume it).

use std::sync::OnceLock;

use chrono::{Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use regex::Regex;

/// How a parsed date relates to a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zone {
    /// No zone given (.NET `DateTimeKind.Unspecified`).
    Unspecified,
    /// `Z` / `GMT`.
    Utc,
    /// An explicit offset, in seconds east of UTC.
    Offset(i32),
}

/// A date-time with its zone information.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DateTime {
    /// The clock time.
    pub local: NaiveDateTime,
    /// The zone.
    pub zone: Zone,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

fn month_from_name(w: &str) -> Option<u32> {
    let w = w.to_ascii_lowercase();
    if w.len() < 3 {
        return None;
    }
    MONTHS.iter().position(|m| m.to_ascii_lowercase().starts_with(&w)).map(|i| i as u32 + 1)
}

fn local_offset_seconds(at: NaiveDateTime) -> i32 {
    chrono::Local.offset_from_local_datetime(&at).single().map_or(0, |o| o.fix().local_minus_utc())
}

impl DateTime {
    /// Now, local clock, unspecified zone (.NET `DateTime.Now` prints without zone in `O`... it
    /// is `Local` kind; rendered with the local offset).
    pub(crate) fn now_local() -> DateTime {
        let now = chrono::Local::now();
        DateTime { local: now.naive_local(), zone: Zone::Offset(now.offset().local_minus_utc()) }
    }

    /// Now in UTC.
    pub(crate) fn now_utc() -> DateTime {
        DateTime { local: chrono::Utc::now().naive_utc(), zone: Zone::Utc }
    }

    /// The offset to print for `z`/`K` style specifiers (local offset when unspecified).
    fn offset_seconds(&self) -> i32 {
        match self.zone {
            Zone::Utc => 0,
            Zone::Offset(o) => o,
            Zone::Unspecified => local_offset_seconds(self.local),
        }
    }

    /// As a DateTimeOffset: an unspecified zone becomes the local offset.
    pub(crate) fn as_offset(self) -> DateTime {
        match self.zone {
            Zone::Unspecified => DateTime { local: self.local, zone: Zone::Offset(local_offset_seconds(self.local)) },
            _ => self,
        }
    }

    /// Adds a (possibly fractional) number of milliseconds; `None` when out of range.
    pub(crate) fn add_millis(self, ms: f64) -> Option<DateTime> {
        if !ms.is_finite() || ms.abs() > 3.2e14 {
            return None;
        }
        let local = self.local.checked_add_signed(Duration::microseconds((ms * 1000.0).round() as i64))?;
        if local.year() < 1 || local.year() > 9999 {
            return None;
        }
        Some(DateTime { local, zone: self.zone })
    }
}

fn date_regexes() -> &'static [Regex; 4] {
    static RES: OnceLock<[Regex; 4]> = OnceLock::new();
    RES.get_or_init(|| {
        let time = r"(?:(?:[Tt]|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?\s*([AaPp][Mm])?)?\s*(Z|z|GMT|UTC|[+-]\d{1,2}(?::?\d{2})?)?";
        let re = |p: &str| Regex::new(&format!("^{p}{time}$")).expect("static date pattern");
        [
            re(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"),
            re(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{2,4})"),
            re(r"(\d{1,2})[\s-]+([A-Za-z]{3,})\.?[\s-]+(\d{4})"),
            re(r"([A-Za-z]{3,})\.?\s+(\d{1,2}),?\s+(\d{4})"),
        ]
    })
}

/// Parses a date-time leniently (en-US: month before day in `5/22/2030`).
pub(crate) fn parse_datetime(text: &str) -> Option<DateTime> {
    let mut t = text.trim();
    // A leading day name ("Wed, 22 May 2030 ...").
    if let Some((head, tail)) = t.split_once(',')
        && DAYS.iter().any(|d| d[..3].eq_ignore_ascii_case(head.trim().get(..3).unwrap_or("")))
        && head.trim().chars().all(char::is_alphabetic)
    {
        t = tail.trim();
    }
    for (i, re) in date_regexes().iter().enumerate() {
        let Some(c) = re.captures(t) else { continue };
        let g = |n: usize| c.get(n).map(|m| m.as_str());
        let (y, m, d) = match i {
            0 => (g(1)?.parse().ok()?, g(2)?.parse().ok()?, g(3)?.parse().ok()?),
            1 => {
                let y: i32 = g(3)?.parse().ok()?;
                let y = if g(3)?.len() <= 2 { if y < 50 { 2000 + y } else { 1900 + y } } else { y };
                (y, g(1)?.parse().ok()?, g(2)?.parse().ok()?)
            }
            2 => (g(3)?.parse().ok()?, month_from_name(g(2)?)?, g(1)?.parse().ok()?),
            _ => (g(3)?.parse().ok()?, month_from_name(g(1)?)?, g(2)?.parse().ok()?),
        };
        let date = NaiveDate::from_ymd_opt(y, m, d)?;
        let mut h: u32 = g(4).map_or(Some(0), |v| v.parse().ok())?;
        let min: u32 = g(5).map_or(Some(0), |v| v.parse().ok())?;
        let s: u32 = g(6).map_or(Some(0), |v| v.parse().ok())?;
        let nanos: u32 = match g(7) {
            Some(f) => format!("{f:0<9}").parse().ok()?,
            None => 0,
        };
        if let Some(ampm) = g(8) {
            if h == 0 || h > 12 {
                return None;
            }
            let pm = ampm.eq_ignore_ascii_case("pm");
            h = match (h, pm) {
                (12, false) => 0,
                (12, true) => 12,
                (h, true) => h + 12,
                (h, false) => h,
            };
        }
        let local = date.and_hms_nano_opt(h, min, s, nanos)?;
        let zone = match g(9) {
            None => Zone::Unspecified,
            Some(z) if z.eq_ignore_ascii_case("z") || z == "GMT" || z == "UTC" => Zone::Utc,
            Some(z) => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let digits: String = z[1..].chars().filter(char::is_ascii_digit).collect();
                let (hh, mm) =
                    if digits.len() > 2 { digits.split_at(digits.len() - 2) } else { (digits.as_str(), "0") };
                let secs = hh.parse::<i32>().ok()? * 3600 + mm.parse::<i32>().ok()? * 60;
                if secs > 14 * 3600 {
                    return None;
                }
                Zone::Offset(sign * secs)
            }
        };
        return Some(DateTime { local, zone });
    }
    None
}

fn offset_text(secs: i32, form: usize) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    let (h, m) = (a / 3600, (a % 3600) / 60);
    match form {
        1 => format!("{sign}{h}"),
        2 => format!("{sign}{h:02}"),
        _ => format!("{sign}{h:02}:{m:02}"),
    }
}

fn standard_date_pattern(c: char) -> Option<&'static str> {
    Some(match c {
        'd' => "M/d/yyyy",
        'D' => "dddd, MMMM d, yyyy",
        'f' => "dddd, MMMM d, yyyy h:mm tt",
        'F' => "dddd, MMMM d, yyyy h:mm:ss tt",
        'g' => "M/d/yyyy h:mm tt",
        'G' => "M/d/yyyy h:mm:ss tt",
        'M' | 'm' => "MMMM d",
        'O' | 'o' => "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
        'R' | 'r' => "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
        's' => "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
        't' => "h:mm tt",
        'T' => "h:mm:ss tt",
        'u' => "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
        'U' => "dddd, MMMM d, yyyy h:mm:ss tt",
        'Y' | 'y' => "MMMM yyyy",
        _ => return None,
    })
}

/// Formats a date with a .NET standard or custom format string; `None` for an invalid
/// format. `is_offset` selects DateTimeOffset semantics for `K`.
pub(crate) fn format_datetime(dt: DateTime, format: &str, is_offset: bool) -> Option<String> {
    let mut dt = dt;
    let pattern: String = if format.chars().count() == 1 {
        let c = format.chars().next()?;
        let p = standard_date_pattern(c)?;
        if matches!(c, 'R' | 'r' | 'u' | 'U') && dt.zone != Zone::Unspecified {
            let off = dt.offset_seconds();
            dt = DateTime { local: dt.local - Duration::seconds(off as i64), zone: Zone::Utc };
        }
        p.to_string()
    } else if format.is_empty() {
        "M/d/yyyy h:mm:ss tt".to_string()
    } else {
        format.to_string()
    };
    let l = dt.local;
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c && !matches!(c, '\'' | '"' | '\\' | '%') {
            n += 1;
        }
        match c {
            'y' => {
                let y = l.year();
                if n <= 2 {
                    let v = y % 100;
                    out.push_str(&if n == 1 { v.to_string() } else { format!("{v:02}") });
                } else {
                    out.push_str(&format!("{y:0n$}"));
                }
            }
            'M' => match n {
                1 => out.push_str(&l.month().to_string()),
                2 => out.push_str(&format!("{:02}", l.month())),
                3 => out.push_str(&MONTHS[l.month0() as usize][..3]),
                _ => out.push_str(MONTHS[l.month0() as usize]),
            },
            'd' => match n {
                1 => out.push_str(&l.day().to_string()),
                2 => out.push_str(&format!("{:02}", l.day())),
                3 => out.push_str(&DAYS[l.weekday().num_days_from_sunday() as usize][..3]),
                _ => out.push_str(DAYS[l.weekday().num_days_from_sunday() as usize]),
            },
            'h' => {
                let h = match l.hour() % 12 {
                    0 => 12,
                    h => h,
                };
                out.push_str(&if n == 1 { h.to_string() } else { format!("{h:02}") });
            }
            'H' => out.push_str(&if n == 1 { l.hour().to_string() } else { format!("{:02}", l.hour()) }),
            'm' => out.push_str(&if n == 1 { l.minute().to_string() } else { format!("{:02}", l.minute()) }),
            's' => out.push_str(&if n == 1 { l.second().to_string() } else { format!("{:02}", l.second()) }),
            'f' | 'F' => {
                if n > 7 {
                    return None;
                }
                let frac = format!("{:09}", l.nanosecond().min(999_999_999));
                let mut s = frac[..n].to_string();
                if c == 'F' {
                    s = s.trim_end_matches('0').to_string();
                    if s.is_empty() && out.ends_with('.') {
                        out.pop();
                    }
                }
                out.push_str(&s);
            }
            't' => {
                let ampm = if l.hour() < 12 { "AM" } else { "PM" };
                out.push_str(if n == 1 { &ampm[..1] } else { ampm });
            }
            'z' => out.push_str(&offset_text(dt.offset_seconds(), n.min(3))),
            'K' => {
                for _ in 0..n {
                    match (dt.zone, is_offset) {
                        (Zone::Unspecified, false) => {}
                        (Zone::Utc, false) => out.push('Z'),
                        _ => out.push_str(&offset_text(dt.offset_seconds(), 3)),
                    }
                }
            }
            ':' | '/' => out.extend(std::iter::repeat_n(c, n)),
            '\'' | '"' => {
                let end = chars[i + 1..].iter().position(|&x| x == c)?;
                out.extend(&chars[i + 1..i + 1 + end]);
                n = end + 2;
            }
            '\\' => {
                out.push(*chars.get(i + 1)?);
                n = 2;
            }
            '%' => {}
            other => out.extend(std::iter::repeat_n(other, n)),
        }
        i += n;
    }
    Some(out)
}

/// Parses a number as .NET `decimal.Parse` in en-US (`NumberStyles.Number`).
pub(crate) fn parse_decimal(text: &str) -> Option<f64> {
    let t = text.trim();
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b',') {
        return None;
    }
    if !body.bytes().any(|b| b.is_ascii_digit()) || body.starts_with(',') || body.matches('.').count() > 1 {
        return None;
    }
    let cleaned: String = t.chars().filter(|&c| c != ',').collect();
    cleaned.parse().ok()
}

/// Parses an integer as .NET `int.Parse` (`NumberStyles.Integer`).
pub(crate) fn parse_int(text: &str) -> Option<i64> {
    let t = text.trim();
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<i64>().ok().filter(|v| i32::try_from(*v).is_ok())
}

fn group(int_digits: &str) -> String {
    let mut out = String::new();
    let len = int_digits.len();
    for (i, c) in int_digits.chars().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Rounds half away from zero (as .NET does for decimals) at `decimals` places, working
/// on the shortest decimal text of the value.
fn fixed(v: f64, decimals: usize) -> (String, String) {
    let decimals = decimals.min(99);
    let s = format!("{}", v.abs());
    let (i, f) = s.split_once('.').unwrap_or((&s, ""));
    let mut digits: Vec<u8> = i.bytes().chain(f.bytes()).map(|b| b - b'0').collect();
    let mut int_len = i.len();
    let keep = int_len + decimals;
    let round_up = f.as_bytes().get(decimals).is_some_and(|b| *b >= b'5');
    digits.truncate(keep);
    digits.resize(keep, 0);
    if round_up {
        let mut k = digits.len();
        loop {
            if k == 0 {
                digits.insert(0, 1);
                int_len += 1;
                break;
            }
            k -= 1;
            if digits[k] == 9 {
                digits[k] = 0;
            } else {
                digits[k] += 1;
                break;
            }
        }
    }
    let int: String = digits[..int_len].iter().map(|d| (d + b'0') as char).collect();
    let int = int.trim_start_matches('0');
    let frac: String = digits[int_len..].iter().map(|d| (d + b'0') as char).collect();
    (if int.is_empty() { "0".to_string() } else { int.to_string() }, frac)
}

fn join(int: &str, frac: &str) -> String {
    if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") }
}

/// Formats a number with a .NET standard or custom numeric format string (en-US).
/// `integral` is true when the value came from an integer type (for `D`/`X`).
pub(crate) fn format_number(v: f64, format: &str, integral: bool) -> Option<String> {
    if !v.is_finite() {
        return Some(super::calc::format_double(v));
    }
    let neg = v < 0.0;
    let mut chars = format.chars();
    let first = chars.next();
    let rest: String = chars.collect();
    let standard =
        first.is_some_and(|c| c.is_ascii_alphabetic()) && (rest.is_empty() || rest.bytes().all(|b| b.is_ascii_digit()));
    if standard {
        let c = first?;
        let precision: Option<usize> =
            if rest.is_empty() { None } else { Some(rest.parse().ok().filter(|p| *p <= 999)?) };
        let sign =
            |s: String| if neg && s.bytes().any(|b| b.is_ascii_digit() && b != b'0') { format!("-{s}") } else { s };
        return match c.to_ascii_uppercase() {
            'C' => {
                let (i, f) = fixed(v, precision.unwrap_or(2));
                Some(sign(format!("${}", join(&group(&i), &f))))
            }
            'F' => {
                let (i, f) = fixed(v, precision.unwrap_or(2));
                Some(sign(join(&i, &f)))
            }
            'N' => {
                let (i, f) = fixed(v, precision.unwrap_or(2));
                Some(sign(join(&group(&i), &f)))
            }
            'P' => {
                let (i, f) = fixed(v * 100.0, precision.unwrap_or(2));
                Some(sign(format!("{}%", join(&group(&i), &f))))
            }
            'D' if integral => {
                let s = format!("{:0w$}", v.abs() as i64, w = precision.unwrap_or(0));
                Some(if neg { format!("-{s}") } else { s })
            }
            'X' if integral => {
                let s = format!("{:0w$x}", v as i64, w = precision.unwrap_or(0));
                Some(if c == 'X' { s.to_uppercase() } else { s })
            }
            'E' => {
                let p = precision.unwrap_or(6);
                let s = format!("{:.*e}", p, v.abs());
                let (m, e) = s.split_once('e')?;
                let e: i32 = e.parse().ok()?;
                let ec = if c == 'e' { 'e' } else { 'E' };
                Some(sign(format!("{m}{ec}{}{:03}", if e < 0 { '-' } else { '+' }, e.abs())))
            }
            'G' | 'R' => match precision {
                Some(p) if p > 0 => {
                    let s = format!("{:.*e}", p - 1, v);
                    let r: f64 = s.parse().ok()?;
                    Some(super::calc::format_double(r))
                }
                _ => Some(super::calc::format_double(v)),
            },
            _ => None,
        };
    }
    Some(custom_number(v, format))
}

/// Splits `0.00E+00` into the mantissa format and (always-sign, exponent digits).
fn exponent_part(fmt: &str) -> Option<(String, bool, usize, String)> {
    let chars: Vec<char> = fmt.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if !matches!(c, 'E' | 'e') {
            continue;
        }
        let mut j = i + 1;
        let mut always = false;
        if let Some(&sign) = chars.get(j).filter(|c| matches!(c, '+' | '-')) {
            always = sign == '+';
            j += 1;
        }
        let zeros = chars[j..].iter().take_while(|&&c| c == '0').count();
        if zeros == 0 {
            continue;
        }
        let mantissa: String = chars[..i].iter().collect();
        let rest: String = chars[j + zeros..].iter().collect();
        return Some((mantissa, always, zeros, rest));
    }
    None
}

fn scientific(v: f64, mantissa_fmt: &str, always: bool, digits: usize, rest: &str, e_char: char) -> String {
    let int_ph = mantissa_fmt.split('.').next().unwrap_or("").chars().filter(|&c| c == '0' || c == '#').count().max(1);
    let mut exp = if v == 0.0 { 0 } else { v.abs().log10().floor() as i32 - (int_ph as i32 - 1) };
    let mut m = v / 10f64.powi(exp);
    let mut text = custom_number(m, mantissa_fmt);
    let int_digits = text.trim_start_matches('-').split('.').next().unwrap_or("").len();
    if v != 0.0 && int_digits > int_ph {
        exp += 1;
        m = v / 10f64.powi(exp);
        text = custom_number(m, mantissa_fmt);
    }
    let sign = if exp < 0 {
        "-"
    } else if always {
        "+"
    } else {
        ""
    };
    format!("{text}{e_char}{sign}{:0digits$}{rest}", exp.abs())
}

fn custom_number(v: f64, format: &str) -> String {
    if let Some((mantissa, always, digits, rest)) = exponent_part(format) {
        let e_char = format.chars().find(|c| matches!(c, 'E' | 'e')).unwrap_or('E');
        return scientific(v, &mantissa, always, digits, &rest, e_char);
    }
    let sections: Vec<&str> = format.split(';').collect();
    let (fmt, v, force_no_sign) = if v < 0.0 && sections.len() > 1 && !sections[1].is_empty() {
        (sections[1], -v, true)
    } else if v == 0.0 && sections.len() > 2 {
        (sections[2], v, false)
    } else {
        (sections[0], v, false)
    };
    let chars: Vec<char> = fmt.chars().collect();
    let is_ph = |c: char| c == '0' || c == '#';
    let first_ph = chars.iter().position(|&c| is_ph(c));
    let Some(first_ph) = first_ph else { return fmt.replace(['\'', '"'], "") };
    let last_ph = chars.iter().rposition(|&c| is_ph(c) || c == '.' || c == ',').unwrap_or(first_ph);
    let number_part: String = chars[first_ph..=last_ph].iter().collect();
    let percent = fmt.contains('%');
    let mut value = v.abs();
    if percent {
        value *= 100.0;
    }
    let (int_fmt, frac_fmt) = match number_part.split_once('.') {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (number_part.clone(), String::new()),
    };
    let mut int_fmt = int_fmt;
    while int_fmt.ends_with(',') {
        int_fmt.pop();
        value /= 1000.0;
    }
    let thousands = int_fmt.contains(',');
    let max_dec = frac_fmt.chars().filter(|&c| is_ph(c)).count();
    let frac_ph: Vec<char> = frac_fmt.chars().filter(|&c| is_ph(c)).collect();
    let min_dec = frac_ph.iter().rposition(|&c| c == '0').map_or(0, |p| p + 1);
    let min_int = int_fmt.chars().filter(|&c| c == '0').count();
    let (i, mut f) = fixed(value, max_dec);
    while f.len() > min_dec && f.ends_with('0') {
        f.pop();
    }
    let mut i = i.trim_start_matches('0').to_string();
    while i.len() < min_int {
        i.insert(0, '0');
    }
    if thousands {
        i = group(&i);
    }
    let mut num = join(&i, &f);
    if num.is_empty() {
        num = String::new();
    }
    let literal = |s: &[char]| -> String { s.iter().filter(|&&c| c != '\'' && c != '"').collect() };
    let prefix = literal(&chars[..first_ph]);
    let suffix = literal(&chars[last_ph + 1..]);
    let nonzero = num.bytes().any(|b| b.is_ascii_digit() && b != b'0');
    let sign = if v < 0.0 && !force_no_sign && nonzero { "-" } else { "" };
    format!("{sign}{prefix}{num}{suffix}")
}

/// Renders a date in the round-trip `O` form the date filters return.
pub(crate) fn round_trip(dt: DateTime) -> String {
    format_datetime(dt, "O", false).unwrap_or_default()
}

#[allow(dead_code)]
fn _assert_fixed_offset_used(_: FixedOffset) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let d = parse_datetime("2030/05/22 09:05:00").unwrap();
        assert_eq!(format_datetime(d, "HH dd-MMM-yyy", false).unwrap(), "09 22-May-2030");
        assert_eq!(round_trip(d), "2030-05-22T09:05:00.0000000");
        let d = parse_datetime("2030-05-22T09:05:00+02:00").unwrap();
        assert_eq!(round_trip(d), "2030-05-22T09:05:00.0000000+02:00");
        let d = parse_datetime("2030-05-22T09:05:00Z").unwrap();
        assert_eq!(round_trip(d), "2030-05-22T09:05:00.0000000Z");
        assert!(parse_datetime("hello World").is_none());
    }

    #[test]
    fn numbers() {
        assert_eq!(format_number(23.4, "C", false).unwrap(), "$23.40");
        assert_eq!(format_number(1234.5678, "N2", false).unwrap(), "1,234.57");
        assert_eq!(format_number(1234.5678, "0.00", false).unwrap(), "1234.57");
        assert_eq!(format_number(1234.5, "#,##0.0", false).unwrap(), "1,234.5");
        assert_eq!(format_number(0.125, "0%", false).unwrap(), "13%");
        assert_eq!(format_number(42.0, "D5", true).unwrap(), "00042");
        assert_eq!(format_number(1234.5678, "0.00E+00", false).unwrap(), "1.23E+03");
        assert_eq!(format_number(0.00012, "0.0e0", false).unwrap(), "1.2e-4");
    }
}
