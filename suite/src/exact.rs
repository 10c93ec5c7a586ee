//! Exact probabilities. What Kubernetes requires is a rational (`1/3` of
//! the traffic to each of three endpoints); what a trace finds is an exact
//! decimal (`-m statistic` thresholds are dyadic: `k / 2^31` in the kernel,
//! or the digits as written). Deciding brings both to [`BigRational`] and
//! compares them there, the tolerance as an exact difference: nothing is
//! divided into decimals or rounded on the way. Decimal renderings are for
//! people only ([`show`]).

use bigdecimal::BigDecimal;
use num_bigint::BigInt;
use num_traits::{One, Signed, Zero};

use kpconform_iptables::format_probability;

pub use num_rational::BigRational;

/// `10^n`.
fn ten_to(n: u64) -> BigInt {
    num_traits::pow(BigInt::from(10), usize::try_from(n).unwrap_or(usize::MAX))
}

/// The decimal's exact value as a fraction.
pub fn from_decimal(d: &BigDecimal) -> BigRational {
    let (digits, exponent) = d.as_bigint_and_exponent();
    if exponent >= 0 {
        BigRational::new(digits, ten_to(exponent.unsigned_abs()))
    } else {
        BigRational::from_integer(digits * ten_to(exponent.unsigned_abs()))
    }
}

/// `n` as a fraction.
pub fn integer(n: u64) -> BigRational {
    BigRational::from_integer(BigInt::from(n))
}

/// The fraction as an exact decimal, when it has one (its reduced
/// denominator has no prime factor but 2 and 5); `None` for `1/3`.
pub fn to_decimal(r: &BigRational) -> Option<BigDecimal> {
    let mut rest = r.denom().clone();
    let (two, five) = (BigInt::from(2), BigInt::from(5));
    let (mut twos, mut fives) = (0u64, 0u64);
    while (&rest % &two).is_zero() {
        rest /= &two;
        twos += 1;
    }
    while (&rest % &five).is_zero() {
        rest /= &five;
        fives += 1;
    }
    if !rest.is_one() {
        return None;
    }
    // numer/denom = numer * (10^scale / denom) / 10^scale, the inner quotient exact.
    let scale = twos.max(fives);
    let digits = r.numer() * (ten_to(scale) / r.denom());
    Some(BigDecimal::new(digits, i64::try_from(scale).ok()?))
}

/// Whether `a` and `b` differ by at most `tolerance`, exactly.
pub fn within(a: &BigRational, b: &BigRational, tolerance: &BigRational) -> bool {
    (a - b).abs() <= *tolerance
}

/// A traced (decimal) mass against an exact expectation, within a decimal
/// tolerance: `|actual - expected| <= tolerance` in rationals.
pub fn decimal_within(actual: &BigDecimal, expected: &BigRational, tolerance: &BigDecimal) -> bool {
    within(&from_decimal(actual), expected, &from_decimal(tolerance))
}

/// The fraction for people, as [`format_probability`] shows decimals
/// (`0.5`, `0.333333333333`): exact decimals as they are, others through
/// 40 digits of long division, which only this rendering uses.
pub fn show(r: &BigRational) -> String {
    let decimal = to_decimal(r).unwrap_or_else(|| {
        const DIGITS: u64 = 40;
        BigDecimal::new(r.numer() * ten_to(DIGITS) / r.denom(), DIGITS as i64)
    });
    format_probability(&decimal)
}

/// The exact value for messages: the decimal when there is one (`1.2`),
/// else the reduced fraction (`4/3`).
pub fn exact_text(r: &BigRational) -> String {
    match to_decimal(r) {
        Some(d) => d.normalized().to_string(),
        None => r.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> BigDecimal {
        BigDecimal::from_str(s).expect("decimal")
    }

    fn ratio(n: i64, d: i64) -> BigRational {
        BigRational::new(n.into(), d.into())
    }

    #[test]
    fn decimals_convert_exactly_both_ways() {
        assert_eq!(from_decimal(&dec("0.25")), ratio(1, 4));
        assert_eq!(from_decimal(&dec("1.2")), ratio(6, 5));
        assert_eq!(from_decimal(&dec("1e3")), ratio(1000, 1));
        assert_eq!(from_decimal(&dec("0")), ratio(0, 1));
        let kernel = kpconform_iptables::kernel_fraction(715827883);
        assert_eq!(to_decimal(&from_decimal(&kernel)), Some(kernel.clone()));
        assert_eq!(to_decimal(&ratio(1, 3)), None);
        assert_eq!(to_decimal(&ratio(3, 40)), Some(dec("0.075")));
        assert_eq!(to_decimal(&ratio(7, 1)), Some(dec("7")));
    }

    #[test]
    fn tolerance_is_an_exact_difference() {
        let third = ratio(1, 3);
        let tol = dec("0.000001");
        // The kernel's 1/3 (715827883 / 2^31) is within 1e-6 of a third.
        assert!(decimal_within(
            &kpconform_iptables::kernel_fraction(715827883),
            &third,
            &tol
        ));
        // 0.333333 is 1/3 - 1/3_000_000: within 1e-6; 0.333332 is not.
        assert!(decimal_within(&dec("0.333333"), &third, &tol));
        assert!(!decimal_within(&dec("0.333332"), &third, &tol));
        // At exactly the tolerance it holds; any closer decimal to the
        // boundary than rounding could see is still decided.
        assert!(decimal_within(&dec("0.500001"), &ratio(1, 2), &tol));
        assert!(!decimal_within(
            &dec("0.50000100000000000000000000000000000001"),
            &ratio(1, 2),
            &tol
        ));
        assert!(!decimal_within(
            &dec("0.3333333333"),
            &third,
            &BigDecimal::from(0)
        ));
    }

    #[test]
    fn shown_like_traced_probabilities() {
        assert_eq!(show(&ratio(1, 3)), "0.333333333333");
        assert_eq!(show(&ratio(2, 3)), "0.666666666667");
        assert_eq!(show(&ratio(1, 2)), "0.5");
        assert_eq!(show(&ratio(1, 1)), "1");
        assert_eq!(show(&ratio(0, 1)), "0");
        assert_eq!(exact_text(&ratio(6, 5)), "1.2");
        assert_eq!(exact_text(&ratio(4, 3)), "4/3");
    }
}
