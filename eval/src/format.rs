//! How the crate's reports write numbers: percentages with one decimal and the interval
//! in brackets, counts with SI prefixes, durations in the largest sensible unit.

use crate::Estimate;

/// "90.5 % (89.7–91.2)".
pub fn percent(e: &Estimate) -> String {
    format!(
        "{} ({:.1}–{:.1})",
        share(e.value),
        e.low * 100.0,
        e.high * 100.0
    )
}

/// A share as a percentage with one decimal: "90.5 %".
pub fn share(value: f64) -> String {
    format!("{:.1} %", value * 100.0)
}

/// "1.63 M", "412 M", "4.25 G", "980".
pub fn count(n: f64) -> String {
    let (value, prefix) = if n.abs() >= 1e9 {
        (n / 1e9, " G")
    } else if n.abs() >= 1e6 {
        (n / 1e6, " M")
    } else if n.abs() >= 1e3 {
        (n / 1e3, " k")
    } else {
        return format!("{n:.0}");
    };
    let digits = if value.abs() >= 100.0 {
        0
    } else if value.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.digits$}{prefix}")
}

/// "42 s", "26 min 9 s", "3 h 05 min".
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "–".into();
    }
    let total = seconds.round().max(0.0) as u64;
    if total < 120 {
        format!("{total} s")
    } else if total < 2 * 3600 {
        format!("{} min {} s", total / 60, total % 60)
    } else {
        let minutes = (total + 30) / 60;
        format!("{} h {:02} min", minutes / 60, minutes % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_the_way_the_report_prints_them() {
        let e = Estimate {
            value: 0.90531,
            low: 0.89746,
            high: 0.91199,
        };
        assert_eq!(percent(&e), "90.5 % (89.7–91.2)");
        assert_eq!(count(1_631_617.0), "1.63 M");
        assert_eq!(count(412_000_000.0), "412 M");
        assert_eq!(count(4_250_000_000.0), "4.25 G");
        assert_eq!(count(35_500.0), "35.5 k");
        assert_eq!(count(980.0), "980");
        assert_eq!(duration(42.2), "42 s");
        assert_eq!(duration(1568.5), "26 min 9 s");
        assert_eq!(duration(11_100.0), "3 h 05 min");
        assert_eq!(duration(f64::NAN), "–");
    }
}
