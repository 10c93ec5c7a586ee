//! Exact probabilities for `-m statistic --mode random`.
//!
//! iptables parses `--probability P` with `strtod` and stores
//! `k = lround(P * 2^31)`; the kernel then matches when a 31-bit random number
//! is below `k`, so the probability really applied is exactly `k / 2^31`.
//! iptables-save prints that value with 11 decimals. Both the written value
//! and `k` are kept so the tracer can evaluate either, exactly.

use std::fmt;
use std::str::FromStr;

use bigdecimal::num_bigint::BigInt;
use bigdecimal::BigDecimal;

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

/// A `--probability` value.
#[derive(Debug, Clone)]
pub struct Probability {
    written: BigDecimal,
    text: String,
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
        let written = BigDecimal::from_str(text).map_err(|_| not_a_number())?;
        if !(BigDecimal::from(0)..=BigDecimal::from(1)).contains(&written) {
            return Err(ProbabilityError::OutOfRange(text.to_string()));
        }
        // Rust's float parsing is correctly rounded, like glibc's strtod, and
        // the multiplication by a power of two is exact, so this reproduces
        // iptables' `lround(0x80000000 * strtod(P))` bit for bit.
        let double: f64 = text.parse().map_err(|_| not_a_number())?;
        let kernel_units = (double * KERNEL_SCALE as f64).round() as u32;
        Ok(Probability {
            written,
            text: text.to_string(),
            kernel_units,
        })
    }

    /// The probability `1/n` spelled with `decimals` decimals (rounded half
    /// up, as Go's `%0.10f` does for these values) — kube-proxy's spelling.
    pub fn one_over(n: u32, decimals: u32) -> Probability {
        assert!(n > 0, "1/0 is not a probability");
        let exact = BigDecimal::from(1) / BigDecimal::from(n);
        let rounded = exact.with_scale_round(decimals as i64, bigdecimal::RoundingMode::HalfEven);
        Probability::parse(&format!("{rounded}")).expect("1/n is a valid probability")
    }

    /// The value as written.
    pub fn written(&self) -> &BigDecimal {
        &self.written
    }

    /// The text as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// `k` in `k / 2^31`, what the kernel stores.
    pub fn kernel_units(&self) -> u32 {
        self.kernel_units
    }

    /// `k / 2^31` as an exact decimal.
    pub fn kernel(&self) -> BigDecimal {
        kernel_fraction(self.kernel_units)
    }

    /// The value the tracer applies in `mode`.
    pub fn value(&self, mode: ProbabilityMode) -> BigDecimal {
        match mode {
            ProbabilityMode::Kernel => self.kernel(),
            ProbabilityMode::AsWritten => self.written.clone(),
        }
    }

    /// iptables-save's spelling: `k / 2^31` with 11 decimals.
    pub fn save_spelling(&self) -> String {
        let v = self
            .kernel()
            .with_scale_round(11, bigdecimal::RoundingMode::HalfEven);
        format!("{v}")
    }
}

/// `k / 2^31` exactly: `k * 5^31 / 10^31`, so no division is ever needed.
pub fn kernel_fraction(k: u32) -> BigDecimal {
    let five_pow_31 = BigInt::from(5u32).pow(31);
    BigDecimal::new(BigInt::from(k) * five_pow_31, 31)
}

impl PartialEq for Probability {
    fn eq(&self, other: &Self) -> bool {
        self.written == other.written
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
        assert_eq!(
            kernel_fraction(1 << 30),
            BigDecimal::from_str("0.5").unwrap()
        );
        assert_eq!(kernel_fraction(0), BigDecimal::from(0));
    }
}
