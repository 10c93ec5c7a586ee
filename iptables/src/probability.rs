//! Exact probabilities for `-m statistic --mode random`.
//!
//! iptables parses `--probability P` with `strtod` and stores
//! `k = lround(P * 2^31)`; the kernel then matches when a 31-bit random number
//! is below `k`, so the probability really applied is exactly `k / 2^31`.
//! iptables-save prints that value with 11 decimals. Both the written value
//! and `k` are kept so the tracer can evaluate either, exactly.

use std::fmt;

use crate::mass::Mass;

/// 2^31, the kernel's probability scale.
pub const KERNEL_SCALE: u64 = 1 << 31;

/// Which value of a `--probability` the tracer applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ProbabilityMode {
    /// `round(P * 2^31) / 2^31`, what the kernel really does (the default).
    #[default]
    Kernel,
    /// The decimal exactly as written in the rule.
    AsWritten,
}

/// A `--probability` value: the kernel's units and the text as written.
/// Dumps hold one per endpoint, so nothing else is stored; the exact
/// values ([`Mass`]) are made when a trace needs them.
#[derive(Debug, Clone)]
pub struct Probability {
    text: Box<str>,
    kernel_units: u32,
}

/// Why a probability did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbabilityError {
    /// Not a decimal number.
    #[error("`{0}` is not a decimal number")]
    NotANumber(String),
    /// Outside 0..=1.
    #[error("probability `{0}` is outside 0..1")]
    OutOfRange(String),
}

impl Probability {
    /// Parses a probability as iptables does.
    pub fn parse(text: &str) -> Result<Probability, ProbabilityError> {
        let not_a_number = || ProbabilityError::NotANumber(text.to_string());
        // strtod would accept hex floats, "inf" and "nan"; iptables then
        // rejects the out-of-range ones. Plain decimals are all that real
        // dumps contain, so anything else is refused up front.
        if text.is_empty()
            || !text.bytes().all(|b| {
                b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'E' || b == b'-' || b == b'+'
            })
        {
            return Err(not_a_number());
        }
        match plain_decimal_in_range(text) {
            Some(true) => {}
            Some(false) => return Err(ProbabilityError::OutOfRange(text.to_string())),
            None => {
                // A leading minus is a number, just out of range.
                let (negative, magnitude) = match text.strip_prefix('-') {
                    Some(rest) => (true, rest),
                    None => (false, text),
                };
                let written: Mass = magnitude.parse().map_err(|_| not_a_number())?;
                if (negative && !written.is_zero()) || written > Mass::one() {
                    return Err(ProbabilityError::OutOfRange(text.to_string()));
                }
            }
        }
        // Rust's float parsing is correctly rounded, like glibc's strtod, and
        // the multiplication by a power of two is exact, so this reproduces
        // iptables' `lround(0x80000000 * strtod(P))` bit for bit.
        let double: f64 = text.parse().map_err(|_| not_a_number())?;
        let kernel_units = (double * KERNEL_SCALE as f64).round() as u32;
        Ok(Probability {
            text: text.into(),
            kernel_units,
        })
    }

    /// The probability `1/n` spelled with `decimals` decimals (rounded half
    /// to even) — kube-proxy's spelling.
    pub fn one_over(n: u32, decimals: u32) -> Probability {
        assert!(n > 0, "1/0 is not a probability");
        let scale = 10u128.pow(decimals.min(30));
        let (q, r) = (scale / u128::from(n), scale % u128::from(n));
        let q = match (2 * r).cmp(&u128::from(n)) {
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Equal => q + (q & 1),
            std::cmp::Ordering::Less => q,
        };
        Probability::parse(&fixed(q, scale, decimals.min(30) as usize))
            .expect("1/n is a valid probability")
    }

    /// The value as written, exactly.
    pub fn written(&self) -> Mass {
        // parse() accepted the text, so it is a non-negative decimal (or
        // a negative zero, which is 0).
        let text = self.text.strip_prefix('-').unwrap_or(&self.text);
        text.parse().unwrap_or_default()
    }

    /// The text as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// `k` in `k / 2^31`, what the kernel stores.
    pub fn kernel_units(&self) -> u32 {
        self.kernel_units
    }

    /// `k / 2^31`, exactly.
    pub fn kernel(&self) -> Mass {
        kernel_fraction(self.kernel_units)
    }

    /// The value the tracer applies in `mode`.
    pub fn value(&self, mode: ProbabilityMode) -> Mass {
        match mode {
            ProbabilityMode::Kernel => self.kernel(),
            ProbabilityMode::AsWritten => self.written(),
        }
    }

    /// iptables-save's spelling: `k / 2^31` with 11 decimals.
    pub fn save_spelling(&self) -> String {
        // k * 10^11 / 2^31 rounded half to even, in integers.
        let scale = 10u128.pow(11);
        let n = u128::from(self.kernel_units) * scale;
        let (q, r) = (n >> 31, n & (KERNEL_SCALE as u128 - 1));
        let q = match (2 * r).cmp(&(KERNEL_SCALE as u128)) {
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Equal => q + (q & 1),
            std::cmp::Ordering::Less => q,
        };
        fixed(q, scale, 11)
    }
}

/// Whether `text`, if it is a plain decimal (digits, and at most one `.`
/// with a digit on some side; no sign or exponent, which every dump's
/// `0.3333333333` lacks) of at most 40 decimals, is within 0..=1: `None` for any other spelling,
/// which is then parsed as an exact [`Mass`] to tell. Read from the text,
/// without building the number: a 10k-Service dump has 60k probabilities.
fn plain_decimal_in_range(text: &str) -> Option<bool> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    // A long fraction is left to Mass, which refuses absurd lengths.
    if (int.is_empty() && frac.is_empty()) || frac.len() > 40 || !digits(int) || !digits(frac) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac_zero = frac.bytes().all(|b| b == b'0');
    Some(int.is_empty() || (int == "1" && frac_zero))
}

/// `q / scale` with exactly `decimals` decimals (`scale = 10^decimals`).
fn fixed(q: u128, scale: u128, decimals: usize) -> String {
    if decimals == 0 {
        return q.to_string();
    }
    format!("{}.{:0decimals$}", q / scale, q % scale)
}

/// `k / 2^31` exactly.
pub fn kernel_fraction(k: u32) -> Mass {
    Mass::from_kernel_units(k)
}

/// Equal when the written values are (`0.5` and `0.50` are the same rule).
impl PartialEq for Probability {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text || self.written() == other.written()
    }
}

impl Eq for Probability {}

impl fmt::Display for Probability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_proxy_spellings_quantize_to_recorded_spellings() {
        for (written, saved) in [
            ("0.3333333333", "0.33333333349"),
            ("0.5000000000", "0.50000000000"),
            ("0.0050000000", "0.00499999989"),
            ("0.1000000000", "0.10000000009"),
        ] {
            let p = Probability::parse(written).unwrap();
            assert_eq!(p.save_spelling(), saved, "{written}");
            // The saved spelling is a fixed point of quantization.
            let q = Probability::parse(saved).unwrap();
            assert_eq!(q.kernel_units(), p.kernel_units(), "{saved}");
        }
    }

    #[test]
    fn plain_decimals_are_judged_as_their_exact_value() {
        // Each spelling's range as the exact value judges it, with the
        // text read plainly and as a Mass.
        for text in [
            "0",
            "1",
            "0.5",
            ".5",
            "5.",
            "1.0",
            "1.0000000001",
            "01.000",
            "0001",
            "2",
            "10",
            "0.9999999999999999999999",
            "1.",
            ".0",
            "00.00",
            "7.25",
        ] {
            let exact = text.parse::<Mass>().expect("a decimal") <= Mass::one();
            assert_eq!(plain_decimal_in_range(text), Some(exact), "{text}");
            assert_eq!(Probability::parse(text).is_ok(), exact, "{text}");
        }
        let long = format!("0.{}", "1".repeat(41));
        for other in [
            "-0", "-0.5", "1e-1", "5E-1", "+0.5", ".", "", "1.2.3", &long,
        ] {
            assert_eq!(plain_decimal_in_range(other), None, "{other}");
        }
        assert!(Probability::parse("-0").is_ok());
        assert!(Probability::parse("5E-1").is_ok());
        assert!(Probability::parse("-0.5").is_err());
        assert!(Probability::parse("1.2.3").is_err());
    }

    #[test]
    fn one_over_matches_kube_proxy() {
        assert_eq!(Probability::one_over(3, 10).text(), "0.3333333333");
        assert_eq!(Probability::one_over(2, 10).text(), "0.5000000000");
        assert_eq!(Probability::one_over(200, 10).text(), "0.0050000000");
        assert_eq!(Probability::one_over(6, 10).text(), "0.1666666667");
    }

    #[test]
    fn rejects_out_of_range_and_junk() {
        assert!(matches!(
            Probability::parse("1.5"),
            Err(ProbabilityError::OutOfRange(_))
        ));
        assert!(matches!(
            Probability::parse("-0.1"),
            Err(ProbabilityError::OutOfRange(_))
        ));
        assert!(matches!(
            Probability::parse("abc"),
            Err(ProbabilityError::NotANumber(_))
        ));
        assert!(matches!(
            Probability::parse(""),
            Err(ProbabilityError::NotANumber(_))
        ));
        assert_eq!(Probability::parse("1").unwrap().kernel_units(), 1 << 31);
    }

    #[test]
    fn kernel_fraction_is_exact() {
        assert_eq!(kernel_fraction(1 << 30), "0.5".parse::<Mass>().unwrap());
        assert_eq!(kernel_fraction(0), Mass::zero());
    }

    /// The spellings the BigDecimal implementation produced.
    fn old_save_spelling(k: u32) -> String {
        use bigdecimal::num_bigint::BigInt;
        let v = bigdecimal::BigDecimal::new(BigInt::from(k) * BigInt::from(5u32).pow(31), 31)
            .with_scale_round(11, bigdecimal::RoundingMode::HalfEven);
        format!("{v}")
    }

    fn old_one_over(n: u32, decimals: u32) -> String {
        let exact = bigdecimal::BigDecimal::from(1) / bigdecimal::BigDecimal::from(n);
        let rounded = exact.with_scale_round(decimals as i64, bigdecimal::RoundingMode::HalfEven);
        format!("{rounded}")
    }

    #[test]
    fn spellings_match_the_decimal_implementation() {
        // Down to 1e-6, below which BigDecimal switched to `4.7E-10`;
        // iptables-save (`%.11f`) and this implementation print
        // `0.00000000047`.
        for k in [
            2148,
            1 << 30,
            (1 << 31) - 1,
            1 << 31,
            715827883,
            10737418,
            21475,
        ] {
            assert_eq!(
                Probability {
                    text: "x".into(),
                    kernel_units: k
                }
                .save_spelling(),
                old_save_spelling(k),
                "{k}"
            );
        }
        for n in [1u32, 2, 3, 6, 7, 200, 4999, 5000, 123456, 1_000_000] {
            assert_eq!(
                Probability::one_over(n, 10).text(),
                old_one_over(n, 10),
                "{n}"
            );
        }
        assert_eq!(Probability::one_over(3, 4).text(), "0.3333");
        let tiny = Probability {
            text: "x".into(),
            kernel_units: 1,
        };
        assert_eq!(tiny.save_spelling(), "0.00000000047");
        let zero = Probability {
            text: "x".into(),
            kernel_units: 0,
        };
        assert_eq!(zero.save_spelling(), "0.00000000000");
    }

    #[test]
    fn written_values_compare_by_value() {
        assert_eq!(
            Probability::parse("0.5").unwrap(),
            Probability::parse("0.50").unwrap()
        );
        assert_ne!(
            Probability::parse("0.5").unwrap(),
            Probability::parse("0.6").unwrap()
        );
        assert_eq!(
            Probability::parse("0.25").unwrap().written(),
            "0.25".parse::<Mass>().unwrap()
        );
        assert_eq!(Probability::parse("-0").unwrap().written(), Mass::zero());
        assert!(matches!(
            Probability::parse("1e-99999999999"),
            Err(ProbabilityError::NotANumber(_))
        ));
    }
}
