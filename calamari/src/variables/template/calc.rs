//! `#{calc}` helpers: reading and printing doubles the way .NET does in en-US.

/// Parses a number as .NET `double.Parse` does in en-US (`Float | AllowThousands`):
/// surrounding whitespace, a sign, `,` group separators, a `.` decimal point, an exponent.
pub(crate) fn parse_double(text: &str) -> Option<f64> {
    let t = text.trim();
    match t {
        "∞" | "Infinity" | "+∞" | "+Infinity" => return Some(f64::INFINITY),
        "-∞" | "-Infinity" => return Some(f64::NEG_INFINITY),
        "NaN" => return Some(f64::NAN),
        _ => {}
    }
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b',' | b'e' | b'E' | b'+' | b'-')) {
        return None;
    }
    let cleaned: String = t.chars().filter(|&c| c != ',').collect();
    if cleaned.starts_with(['e', 'E']) || cleaned.starts_with(['+', '-']) && cleaned[1..].starts_with(['e', 'E']) {
        return None;
    }
    cleaned.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Prints a double as .NET Core's `double.ToString()` in en-US: the shortest round-trip
/// digits, integral values without a decimal point, scientific notation (`1E+15`,
/// `1E-05`) outside `1e-4 .. 1e15`.
pub(crate) fn format_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "∞".into() } else { "-∞".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let s = format!("{v:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let sign = if neg { "-" } else { "" };
    if !(-4..15).contains(&exp) {
        let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        return format!("{sign}{m}E{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    if exp >= 0 {
        let e = exp as usize;
        if digits.len() <= e + 1 {
            format!("{sign}{digits}{}", "0".repeat(e + 1 - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..=e], &digits[e + 1..])
        }
    } else {
        format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_like_dotnet() {
        assert_eq!(format_double(5.0), "5");
        assert_eq!(format_double(-12.0), "-12");
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(2.0 / 7.0), "0.2857142857142857");
        assert_eq!(format_double(0.2 * 7.0), "1.4000000000000001");
        assert_eq!(format_double(1e15), "1E+15");
        assert_eq!(format_double(1e14), "100000000000000");
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(0.00001), "1E-05");
        assert_eq!(format_double(f64::INFINITY), "∞");
        assert_eq!(parse_double(" 1,000.5 "), Some(1000.5));
        assert_eq!(parse_double("abc"), None);
    }
}
