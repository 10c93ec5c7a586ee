//! Exact probabilities. What Kubernetes requires is a rational (`1/3` of
//! the traffic to each of three endpoints); what a trace finds is an exact
//! [`Mass`] (`-m statistic` thresholds are dyadic: `k / 2^31` in the
//! kernel, or the digits as written). Deciding compares them exactly, the
//! tolerance as an exact difference: nothing is divided into decimals or
//! rounded on the way. Decimal renderings are for people only ([`show`]).

use std::num::NonZeroU64;

use bigdecimal::BigDecimal;
use num_bigint::{BigInt, BigUint, Sign};
use num_traits::{One, Signed, Zero};

use kpconform_iptables::{format_probability, Mass};

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

/// The mass's exact value as a fraction.
pub fn from_mass(m: &Mass) -> BigRational {
    m.to_rational()
}

/// A traced mass against an exact expectation, within a decimal tolerance:
/// `|actual - expected| <= tolerance`, exactly.
///
/// With `actual = n/d`, `expected = p/q` and `tolerance = t/e`, that is
/// `|n·q - p·d| · e <= t · d · q` in integers: a trace's masses have
/// denominators of tens of thousands of bits (a path through `n`
/// statistic rules), and reducing them to a `BigRational` would cost a gcd
/// each, quadratic in their size.
pub fn decimal_within(actual: &Mass, expected: &BigRational, tolerance: &BigDecimal) -> bool {
    let (p, q) = (expected.numer(), expected.denom());
    let (t, e) = decimal_parts(tolerance);
    if let ((twos, 0), Some(p), Some(t), Some(q), Some(e)) = (
        actual.exponents(),
        p.to_biguint(),
        t.to_biguint(),
        q.to_biguint(),
        e.to_biguint(),
    ) {
        return dyadic_within(actual.numer(), twos, &p, &q, &t, &e);
    }
    let n = BigInt::from_biguint(Sign::Plus, actual.numer().clone());
    let d = BigInt::from_biguint(Sign::Plus, actual.denom());
    let lhs = (&n * q - p * &d).abs() * e;
    let rhs = t * d * q;
    // Ratio keeps its denominator positive, so the sides keep their sense.
    lhs <= rhs
}

/// [`decimal_within`] for a kernel-mode mass `n / 2^a` and non-negative
/// `p/q`, `t/e`: `|n·q·e - p·e·2^a| <= t·q·2^a`, i.e. `n·q·e / 2^a` lies
/// in `[p·e - t·q, p·e + t·q]`. Only `n·q·e` is long; the bounds are short
/// numbers compared with its shifted value, so the long mass is multiplied
/// once and shifted once, however many endpoints a check compares.
fn dyadic_within(
    n: &BigUint,
    twos: u64,
    p: &BigUint,
    q: &BigUint,
    t: &BigUint,
    e: &BigUint,
) -> bool {
    let x = n * (q * e);
    let floor = &x >> twos;
    // x / 2^a is `floor` exactly, or a little above it.
    let exact = x.trailing_zeros().is_none_or(|z| z >= twos);
    let (center, radius) = (p * e, t * q);
    let high = &center + &radius;
    let above_low = center <= radius || floor >= &center - &radius;
    let below_high = floor < high || (floor == high && exact);
    above_low && below_high
}

/// How many fractional bits a [`MassBound`] keeps: far more than any
/// tolerance a scenario writes needs, and short next to a big service's
/// masses (`31·i` bits for path `i`).
const BOUND_BITS: usize = 256;

/// A sum of kernel-mode masses (`n / 2^a`) known to within `2^-256` per
/// term: `lo <= value · 2^256 <= hi`. Lets a check judge a destination
/// while outcomes stream past without keeping their long exact masses;
/// only [`MassBound::surely_within`] answers, and a caller that gets `false`
/// must decide exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MassBound {
    lo: BigUint,
    hi: BigUint,
}

impl MassBound {
    /// Adds `m` to the bound. `false` (and the bound unchanged) for a mass
    /// whose denominator has fives (probabilities as written): those are
    /// rare and short, and left to the exact path.
    pub fn add(&mut self, m: &Mass) -> bool {
        let (twos, fives) = m.exponents();
        if fives != 0 {
            return false;
        }
        let n = m.numer();
        let Ok(twos) = usize::try_from(twos) else {
            return false;
        };
        if twos <= BOUND_BITS {
            let x = n << (BOUND_BITS - twos);
            self.lo += &x;
            self.hi += x;
        } else {
            let shift = twos - BOUND_BITS;
            let floor = n >> shift;
            let exact = n.trailing_zeros().is_none_or(|z| z >= shift as u64);
            self.hi += &floor;
            if !exact {
                self.hi += 1u32;
            }
            self.lo += floor;
        }
        true
    }

    /// Whether every value the bound allows is within `tolerance` of
    /// `expected` (`|v - p/q| <= t/e`, i.e. `v·q·e` in `[p·e - t·q, p·e +
    /// t·q]`), exactly. `false` also when the bound is too wide to tell.
    pub fn surely_within(&self, expected: &BigRational, tolerance: &BigDecimal) -> bool {
        let (p, q) = (expected.numer(), expected.denom());
        let (t, e) = decimal_parts(tolerance);
        // q > 0 (a Ratio keeps its sign in the numerator) and e > 0, so
        // multiplying by q·e keeps the comparisons' sense.
        let qe = q * &e;
        let (center, radius) = (p * &e, t * q);
        let low = (&center - &radius) << BOUND_BITS;
        let high = (center + radius) << BOUND_BITS;
        let lo = BigInt::from_biguint(Sign::Plus, self.lo.clone()) * &qe;
        let hi = BigInt::from_biguint(Sign::Plus, self.hi.clone()) * qe;
        lo >= low && hi <= high
    }
}

/// `(t, e)` with `d = t / e`, `e > 0`.
fn decimal_parts(d: &BigDecimal) -> (BigInt, BigInt) {
    let (digits, exponent) = d.as_bigint_and_exponent();
    if exponent >= 0 {
        (digits, ten_to(exponent.unsigned_abs()))
    } else {
        (digits * ten_to(exponent.unsigned_abs()), BigInt::one())
    }
}

/// The fraction as an exact [`Mass`], when it is a non-negative one (its
/// reduced denominator has no prime factor but 2 and 5).
pub fn to_mass(r: &BigRational) -> Option<Mass> {
    let d = to_decimal(r)?;
    let (digits, scale) = d.as_bigint_and_exponent();
    let digits: BigUint = digits.to_biguint()?;
    Some(if scale >= 0 {
        Mass::new(digits, scale as u64, scale as u64)
    } else {
        Mass::new(digits * ten_to(scale.unsigned_abs()).to_biguint()?, 0, 0)
    })
}

/// The fraction for people, as [`format_probability`] shows masses
/// (`0.5`, `0.333333333333`): exact decimals as they are, others through
/// 40 digits of long division, which only this rendering uses.
pub fn show(r: &BigRational) -> String {
    if let Some(m) = to_mass(r) {
        return format_probability(&m);
    }
    const DIGITS: u64 = 40;
    show_decimal(
        &to_decimal(r).unwrap_or_else(|| {
            BigDecimal::new(r.numer() * ten_to(DIGITS) / r.denom(), DIGITS as i64)
        }),
    )
}

/// A decimal (a tolerance, a negative rational's approximation) as
/// [`format_probability`] shows masses: at most 12 significant digits,
/// rounded half to even, without trailing zeros.
pub fn show_decimal(d: &BigDecimal) -> String {
    if d.is_zero() {
        return "0".to_string();
    }
    let digits = NonZeroU64::new(12).unwrap_or(NonZeroU64::MIN);
    d.with_precision_round(digits, bigdecimal::RoundingMode::HalfEven)
        .normalized()
        .to_plain_string()
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

    fn mass(s: &str) -> Mass {
        s.parse().expect("mass")
    }

    fn dec(s: &str) -> BigDecimal {
        BigDecimal::from_str(s).expect("decimal")
    }

    #[test]
    fn a_mass_bound_is_sure_only_when_the_whole_bound_is_within() {
        let mut exact = MassBound::default();
        assert!(exact.add(&mass("0.25")));
        assert!(exact.add(&mass("0.25")));
        assert!(exact.surely_within(&ratio(1, 2), &dec("0")));
        assert!(exact.surely_within(&ratio(3, 5), &dec("0.1")));
        assert!(!exact.surely_within(&ratio(3, 5), &dec("0.0999")));
        assert!(!exact.surely_within(&ratio(1, 2), &dec("-0.1")));
        // 1/2 + 2^-300: more bits than the bound keeps, so it straddles
        // 1/2 + 2^-300 (exactly equal) and cannot be sure of tolerance 0;
        // any tolerance wider than its 2^-256 can.
        let tiny = Mass::new(BigUint::one(), 300, 0);
        let mut long = MassBound::default();
        assert!(long.add(&mass("0.5")));
        assert!(long.add(&tiny));
        let want = ratio(1, 2) + BigRational::new(1.into(), BigInt::one() << 300);
        assert!(decimal_within(&(mass("0.5") + tiny), &want, &dec("0")));
        assert!(!long.surely_within(&want, &dec("0")));
        assert!(long.surely_within(&want, &dec("1e-70")));
        assert!(!long.surely_within(&ratio(1, 2), &dec("1e-100")));
        // Masses as written (with fives) are left to the exact path.
        assert!(!MassBound::default().add(&mass("0.2")));
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
        assert_eq!(to_mass(&from_mass(&kernel)), Some(kernel.clone()));
        assert_eq!(to_mass(&ratio(1, 3)), None);
        assert_eq!(to_mass(&ratio(-1, 2)), None);
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
        assert!(decimal_within(&mass("0.333333"), &third, &tol));
        assert!(!decimal_within(&mass("0.333332"), &third, &tol));
        // At exactly the tolerance it holds; any closer decimal to the
        // boundary than rounding could see is still decided.
        assert!(decimal_within(&mass("0.500001"), &ratio(1, 2), &tol));
        // The same boundaries for kernel masses (n / 2^a, decided by a shift).
        let k = kpconform_iptables::kernel_fraction;
        assert!(decimal_within(&k(1 << 30), &ratio(1, 4), &dec("0.25")));
        assert!(decimal_within(&k(1 << 30), &ratio(3, 4), &dec("0.25")));
        assert!(!decimal_within(
            &k(1 << 30),
            &ratio(1, 4),
            &dec("0.2499999")
        ));
        assert!(!decimal_within(
            &k((1 << 30) + 1),
            &ratio(1, 4),
            &dec("0.25")
        ));
        assert!(decimal_within(
            &k((1 << 30) + 1),
            &ratio(3, 4),
            &dec("0.25")
        ));
        assert!(!decimal_within(
            &k((1 << 30) - 1),
            &ratio(3, 4),
            &dec("0.25")
        ));
        assert!(!decimal_within(
            &mass("0.50000100000000000000000000000000000001"),
            &ratio(1, 2),
            &tol
        ));
        assert!(!decimal_within(
            &mass("0.3333333333"),
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
        assert_eq!(show(&ratio(-1, 3)), "-0.333333333333");
        assert_eq!(show_decimal(&dec("0.0000010")), "0.000001");
        assert_eq!(exact_text(&ratio(6, 5)), "1.2");
        assert_eq!(exact_text(&ratio(4, 3)), "4/3");
    }

    proptest::proptest! {
        /// The integer shortcuts decide exactly as rationals do, for kernel
        /// masses (products of `k / 2^31`) and decimals as written.
        #[test]
        fn decimal_within_agrees_with_rationals(
            ks in proptest::collection::vec(0u32..=1 << 31, 1..4),
            written in 0u64..=1_000_000,
            kernel in proptest::bool::ANY,
            p in 0i64..=40,
            q in 1i64..=40,
            t in 0u64..=2_000,
            scale in 0i64..=5,
        ) {
            let actual = if kernel {
                ks.iter()
                    .map(|&k| kpconform_iptables::kernel_fraction(k))
                    .fold(Mass::one(), |acc, m| &acc * &m)
            } else {
                Mass::new(written.into(), 6, 6)
            };
            let expected = BigRational::new(p.into(), q.into());
            let tolerance = BigDecimal::new(t.into(), scale);
            proptest::prop_assert_eq!(
                decimal_within(&actual, &expected, &tolerance),
                within(&from_mass(&actual), &expected, &from_decimal(&tolerance)),
                "{:?} vs {} within {}", actual, expected, tolerance
            );
        }
    }
}
