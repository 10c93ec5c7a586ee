//! Exact probability masses.
//!
//! Every probability the tracer meets is a kernel threshold `k / 2^31` or a
//! decimal as written (`d / 10^s`), and every path mass is a product of
//! them and of their complements, summed over paths. All such numbers are
//! `n / (2^a · 5^b)`: a [`Mass`] keeps exactly that, a big unsigned integer
//! and the two exponents. Products multiply the integers and add the
//! exponents; sums align the exponents with shifts (and, only when decimals
//! as written are involved, multiplications by powers of 5). Nothing is ever
//! divided or rounded, and in the kernel mode no power of 10 is ever formed:
//! a decimal representation would scale `k / 2^31` to `k · 5^31 / 10^31`,
//! and a path through `n` statistic rules would carry `31·n` decimal digits
//! that every addition re-aligns.
//!
//! Exact rationals were the other candidate; they pay a gcd per operation
//! and buy nothing here, since no denominator other than `2^a · 5^b` can
//! arise. A mass is kept canonical (the integer has no factor 2 or 5 that
//! the exponents could cancel), so equal values are equal structurally.

use std::cmp::Ordering;
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul, MulAssign};

use num_bigint::{BigInt, BigUint};
use num_rational::BigRational;
use num_traits::{One, ToPrimitive, Zero};

/// A non-negative exact number `n / (2^a · 5^b)`: a probability or a sum
/// of probabilities.
///
/// ```
/// use kpconform_iptables::Mass;
/// let half = Mass::from_kernel_units(1 << 30);
/// let third: Mass = "0.3333333333".parse().unwrap();
/// assert_eq!(half.complement(), Some(half.clone()));
/// assert_eq!((&half * &third).to_string(), "0.16666666665");
/// assert_eq!(half + third, "0.8333333333".parse().unwrap());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Mass {
    num: BigUint,
    twos: u64,
    fives: u64,
}

/// Why a decimal is not a [`Mass`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a non-negative decimal number")]
pub struct MassParseError(String);

/// The largest decimal exponent a parsed mass may carry: `1e-400000` would
/// otherwise be a valid request for a 400,000-digit power of five.
const MAX_DECIMAL_EXPONENT: u64 = 10_000;

fn pow5(n: u64) -> BigUint {
    // Exponents come from parsed text (bounded) or from products of masses
    // that already exist; a u32 holds any of them that fits in memory.
    num_traits::pow(
        BigUint::from(5u32),
        usize::try_from(n).unwrap_or(usize::MAX),
    )
}

impl Mass {
    /// 0.
    pub fn zero() -> Mass {
        Mass::default()
    }

    /// 1.
    pub fn one() -> Mass {
        Mass::from(1u64)
    }

    /// `k / 2^31`, a kernel probability threshold.
    pub fn from_kernel_units(k: u32) -> Mass {
        Mass::new(BigUint::from(k), 31, 0)
    }

    /// `num / (2^twos · 5^fives)`.
    pub fn new(num: BigUint, twos: u64, fives: u64) -> Mass {
        let mut m = Mass { num, twos, fives };
        m.normalize();
        m
    }

    /// Cancels common factors 2 and 5 (and keeps 0 as `0 / 1`).
    fn normalize(&mut self) {
        let Some(tz) = self.num.trailing_zeros() else {
            self.twos = 0;
            self.fives = 0;
            return;
        };
        let shift = tz.min(self.twos);
        if shift > 0 {
            self.num >>= shift;
            self.twos -= shift;
        }
        // Only masses with decimals as written have fives; one remainder
        // (linear in the size) per operation for them.
        while self.fives > 0 && (&self.num % 5u32).is_zero() {
            self.num /= 5u32;
            self.fives -= 1;
        }
    }

    /// Whether this is 0.
    pub fn is_zero(&self) -> bool {
        self.num.is_zero()
    }

    /// Whether this is 1.
    pub fn is_one(&self) -> bool {
        self.twos == 0 && self.fives == 0 && self.num.is_one()
    }

    /// The exponents `(a, b)` of the denominator `2^a · 5^b` (in lowest
    /// terms).
    pub fn exponents(&self) -> (u64, u64) {
        (self.twos, self.fives)
    }

    /// The numerator `n` of `n / (2^a · 5^b)` (in lowest terms).
    pub fn numer(&self) -> &BigUint {
        &self.num
    }

    /// The denominator `2^a · 5^b` (in lowest terms).
    pub fn denom(&self) -> BigUint {
        let twos = BigUint::one() << self.twos;
        if self.fives == 0 {
            twos
        } else {
            twos * pow5(self.fives)
        }
    }

    /// The numerators of `self` and `other` over their common denominator
    /// `2^max(a) · 5^max(b)`.
    fn aligned(&self, other: &Mass) -> (BigUint, BigUint, u64, u64) {
        let twos = self.twos.max(other.twos);
        let fives = self.fives.max(other.fives);
        let lift = |m: &Mass| {
            let mut n = &m.num << (twos - m.twos);
            if fives > m.fives {
                n *= pow5(fives - m.fives);
            }
            n
        };
        (lift(self), lift(other), twos, fives)
    }

    /// `self - other`, or `None` if that is negative.
    pub fn checked_sub(&self, other: &Mass) -> Option<Mass> {
        let (a, b, twos, fives) = self.aligned(other);
        (a >= b).then(|| Mass::new(a - b, twos, fives))
    }

    /// `|self - other|`.
    pub fn abs_diff(&self, other: &Mass) -> Mass {
        let (a, b, twos, fives) = self.aligned(other);
        let d = if a >= b { a - b } else { b - a };
        Mass::new(d, twos, fives)
    }

    /// `1 - self`, or `None` if `self` is above 1.
    pub fn complement(&self) -> Option<Mass> {
        let den = self.denom();
        (self.num <= den).then(|| Mass::new(den - &self.num, self.twos, self.fives))
    }

    /// The exact value as a fraction (already in lowest terms).
    pub fn to_rational(&self) -> BigRational {
        // Canonical form: the numerator shares no factor with 2^a · 5^b.
        BigRational::new_raw(BigInt::from(self.num.clone()), BigInt::from(self.denom()))
    }

    /// The nearest `f64` (for kernel-mode statistics; never for deciding).
    pub fn to_f64(&self) -> f64 {
        if self.is_zero() {
            return 0.0;
        }
        // q = floor(n · 2^shift / den) with about 64 significant bits, so
        // the result is q · 2^-shift.
        let den = self.denom();
        let shift = 64 + den.bits() as i64 - self.num.bits() as i64;
        let q = if shift >= 0 {
            (&self.num << shift as u64) / &den
        } else {
            (&self.num >> shift.unsigned_abs()) / &den
        };
        let q = q.to_f64().unwrap_or(f64::NAN);
        let exp = i32::try_from(-shift).unwrap_or(i32::MIN);
        if exp < -1000 {
            // Avoid powi underflowing in two steps for tiny masses.
            q * 2f64.powi(-1000) * 2f64.powi((exp + 1000).max(-1000))
        } else {
            q * 2f64.powi(exp)
        }
    }

    /// `floor(self · 10^e)` and whether the rest is below, at or above one
    /// half, for a possibly negative `e`.
    fn scaled(&self, e: i64) -> (BigUint, Ordering) {
        if self.fives == 0 && e >= 0 {
            // n · 10^e / 2^a: a shift, and the rest is the low a bits.
            let n = &self.num * num_traits::pow(BigUint::from(10u32), e as usize);
            let q = &n >> self.twos;
            let half = match self.twos {
                0 => Ordering::Less,
                a if !n.bit(a - 1) => Ordering::Less,
                // The half bit is set: exactly one half when nothing below.
                a if n.trailing_zeros() == Some(a - 1) => Ordering::Equal,
                _ => Ordering::Greater,
            };
            return (q, half);
        }
        let (mut n, mut den) = (self.num.clone(), self.denom());
        let ten = |k: u64| num_traits::pow(BigUint::from(10u32), k as usize);
        if e >= 0 {
            // Multiplying by 10^e = 2^e · 5^e: shift, and multiply by 5^e
            // (only a short factor when e is small, as it is for display).
            n = (n << e as u64) * pow5(e as u64);
        } else {
            den *= ten(e.unsigned_abs());
        }
        let q = &n / &den;
        let rest = n - &q * &den;
        let half = (rest << 1u32).cmp(&den);
        (q, half)
    }

    /// The value rounded half to even to `digits` significant digits, as
    /// `(d, e)` with value `d / 10^e` and `d` without trailing zeros.
    fn round_significant(&self, digits: u32) -> (BigUint, i64) {
        // log10(n / 2^a 5^b) estimated from bit lengths; then corrected.
        let approx = (self.num.bits() as f64 - self.twos as f64) * std::f64::consts::LOG10_2
            - self.fives as f64 * (1.0 - std::f64::consts::LOG10_2);
        let low = num_traits::pow(BigUint::from(10u32), digits as usize - 1);
        let high = &low * 10u32;
        let mut e = i64::from(digits) - approx.ceil() as i64;
        let (q, half) = loop {
            let (q, half) = self.scaled(e);
            if q >= high {
                e -= 1;
            } else if q < low {
                e += 1;
            } else {
                break (q, half);
            }
        };
        let q = match half {
            Ordering::Greater => q + 1u32,
            Ordering::Equal if (&q % 2u32).is_one() => q + 1u32,
            _ => q,
        };
        strip_zeros(q, e)
    }

    /// The value rounded half to even to `decimals` decimal places, as a
    /// plain decimal without trailing zeros (`0.1666666667`, `1`, `0`).
    pub fn to_decimal_places(&self, decimals: u32) -> String {
        let (q, half) = self.scaled(i64::from(decimals));
        let q = match half {
            Ordering::Greater => q + 1u32,
            Ordering::Equal if (&q % 2u32).is_one() => q + 1u32,
            _ => q,
        };
        let (d, e) = strip_zeros(q, i64::from(decimals));
        plain(&d, e)
    }

    /// The exact value as a plain decimal (every mass has a finite one),
    /// e.g. `0.3333333334885`.
    pub fn to_exact_decimal(&self) -> String {
        let e = self.twos.max(self.fives);
        let d = (&self.num << (e - self.twos)) * pow5(e - self.fives);
        let (d, e) = strip_zeros(d, e as i64);
        plain(&d, e)
    }
}

/// `(d, e)` with the trailing decimal zeros of `d` moved into `e`.
fn strip_zeros(mut d: BigUint, mut e: i64) -> (BigUint, i64) {
    if d.is_zero() {
        return (d, 0);
    }
    loop {
        let (q, r) = (&d / 10u32, &d % 10u32);
        if !r.is_zero() {
            break;
        }
        d = q;
        e -= 1;
    }
    (d, e)
}

/// `d / 10^e` as a plain decimal.
fn plain(d: &BigUint, e: i64) -> String {
    let digits = d.to_string();
    if e <= 0 {
        if d.is_zero() {
            return digits;
        }
        return format!("{digits}{}", "0".repeat(e.unsigned_abs() as usize));
    }
    let e = e as usize;
    if digits.len() > e {
        let (int, frac) = digits.split_at(digits.len() - e);
        format!("{int}.{frac}")
    } else {
        format!("0.{}{digits}", "0".repeat(e - digits.len()))
    }
}

impl From<u64> for Mass {
    fn from(n: u64) -> Mass {
        Mass {
            num: BigUint::from(n),
            twos: 0,
            fives: 0,
        }
    }
}

impl std::str::FromStr for Mass {
    type Err = MassParseError;

    /// A non-negative decimal: `0.5`, `1`, `.25`, `5e-3`.
    fn from_str(text: &str) -> Result<Mass, MassParseError> {
        let err = || MassParseError(text.to_string());
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], Some(&text[i + 1..])),
            None => (text, None),
        };
        let mantissa = mantissa.strip_prefix('+').unwrap_or(mantissa);
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let exponent: i64 = match exponent {
            None => 0,
            Some(e) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err());
                }
                e.parse().map_err(|_| err())?
            }
        };
        let scale = (frac.len() as i64)
            .checked_sub(exponent)
            .filter(|s| s.unsigned_abs() <= MAX_DECIMAL_EXPONENT)
            .ok_or_else(err)?;
        let digits: BigUint = format!("{int}{frac}").parse().map_err(|_| err())?;
        Ok(if scale >= 0 {
            Mass::new(digits, scale as u64, scale as u64)
        } else {
            let ten = num_traits::pow(BigUint::from(10u32), scale.unsigned_abs() as usize);
            Mass::new(digits * ten, 0, 0)
        })
    }
}

impl Ord for Mass {
    fn cmp(&self, other: &Mass) -> Ordering {
        if self.twos == other.twos && self.fives == other.fives {
            return self.num.cmp(&other.num);
        }
        let (a, b, _, _) = self.aligned(other);
        a.cmp(&b)
    }
}

impl PartialOrd for Mass {
    fn partial_cmp(&self, other: &Mass) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Mul<&Mass> for &Mass {
    type Output = Mass;
    fn mul(self, rhs: &Mass) -> Mass {
        Mass::new(
            &self.num * &rhs.num,
            self.twos + rhs.twos,
            self.fives + rhs.fives,
        )
    }
}

impl Mul for Mass {
    type Output = Mass;
    fn mul(self, rhs: Mass) -> Mass {
        &self * &rhs
    }
}

impl MulAssign<&Mass> for Mass {
    fn mul_assign(&mut self, rhs: &Mass) {
        // In place: a long path's mass is multiplied by one short factor at
        // each statistic rule.
        self.num *= &rhs.num;
        self.twos += rhs.twos;
        self.fives += rhs.fives;
        self.normalize();
    }
}

impl Add<&Mass> for &Mass {
    type Output = Mass;
    fn add(self, rhs: &Mass) -> Mass {
        let mut out = self.clone();
        out += rhs;
        out
    }
}

impl Add for Mass {
    type Output = Mass;
    fn add(mut self, rhs: Mass) -> Mass {
        self += &rhs;
        self
    }
}

impl AddAssign<&Mass> for Mass {
    fn add_assign(&mut self, rhs: &Mass) {
        if rhs.is_zero() {
            return;
        }
        if self.is_zero() {
            *self = rhs.clone();
            return;
        }
        let twos = self.twos.max(rhs.twos);
        let fives = self.fives.max(rhs.fives);
        if twos > self.twos {
            self.num <<= twos - self.twos;
        }
        if fives > self.fives {
            self.num *= pow5(fives - self.fives);
        }
        let mut other = &rhs.num << (twos - rhs.twos);
        if fives > rhs.fives {
            other *= pow5(fives - rhs.fives);
        }
        self.num += other;
        self.twos = twos;
        self.fives = fives;
        self.normalize();
    }
}

impl AddAssign for Mass {
    fn add_assign(&mut self, rhs: Mass) {
        *self += &rhs;
    }
}

impl<'a> Sum<&'a Mass> for Mass {
    fn sum<I: Iterator<Item = &'a Mass>>(iter: I) -> Mass {
        iter.fold(Mass::zero(), |mut acc, m| {
            acc += m;
            acc
        })
    }
}

impl Sum for Mass {
    fn sum<I: Iterator<Item = Mass>>(iter: I) -> Mass {
        iter.fold(Mass::zero(), |mut acc, m| {
            acc += &m;
            acc
        })
    }
}

/// At most 12 significant digits, rounded half to even, without trailing
/// zeros: `0.5`, `0.333333333489`, `1` (see [`format_probability`]).
///
/// [`format_probability`]: crate::format_probability
impl fmt::Display for Mass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let (d, e) = self.round_significant(12);
        f.write_str(&plain(&d, e))
    }
}

/// The exact value as `n / 2^a · 5^b`, e.g. `Mass(1/2^1·5^0)` for 0.5.
impl fmt::Debug for Mass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mass({}/2^{}·5^{})", self.num, self.twos, self.fives)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bigdecimal::BigDecimal;
    use proptest::prelude::*;
    use std::num::NonZeroU64;
    use std::str::FromStr;

    fn m(s: &str) -> Mass {
        s.parse().unwrap()
    }

    /// The rendering this crate used when masses were `BigDecimal`s; the
    /// golden snapshots and reports were written with it.
    fn old_format(p: &BigDecimal) -> String {
        if p == &BigDecimal::from(0) {
            return "0".to_string();
        }
        p.with_precision_round(
            NonZeroU64::new(12).unwrap(),
            bigdecimal::RoundingMode::HalfEven,
        )
        .normalized()
        .to_plain_string()
    }

    fn rational(s: &str) -> BigRational {
        let d = BigDecimal::from_str(s).unwrap();
        let (digits, exp) = d.as_bigint_and_exponent();
        let ten = |k: u64| num_traits::pow(BigInt::from(10), k as usize);
        if exp >= 0 {
            BigRational::new(digits, ten(exp as u64))
        } else {
            BigRational::from_integer(digits * ten(exp.unsigned_abs()))
        }
    }

    #[test]
    fn parses_decimals_exactly() {
        assert_eq!(m("0.5"), Mass::from_kernel_units(1 << 30));
        assert_eq!(m("0.50"), m(".5"));
        assert_eq!(m("5e-1"), m("0.5"));
        assert_eq!(m("1"), Mass::one());
        assert_eq!(m("0"), Mass::zero());
        assert_eq!(m("0.000"), Mass::zero());
        assert_eq!(m("2.5E+1"), Mass::from(25));
        for bad in [
            "",
            ".",
            "-0.5",
            "0.5.1",
            "1e",
            "e5",
            "0x1",
            "1e-99999999999999999999",
            "nan",
        ] {
            assert!(bad.parse::<Mass>().is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_like_the_decimal_rendering_it_replaces() {
        for (s, want) in [
            ("0.5000000000000", "0.5"),
            ("1", "1"),
            ("0", "0"),
            ("0.99999999999999", "1"),
            ("0.0000001", "0.0000001"),
            ("0.3333333333", "0.3333333333"),
            ("0.1234567890125", "0.123456789012"),
            ("0.1234567890135", "0.123456789014"),
            ("123456789012345", "123456789012000"),
            ("20", "20"),
        ] {
            assert_eq!(m(s).to_string(), want, "{s}");
            assert_eq!(old_format(&BigDecimal::from_str(s).unwrap()), want, "{s}");
        }
        assert_eq!(
            Mass::from_kernel_units(715827883).to_string(),
            "0.333333333489"
        );
    }

    #[test]
    fn complements_and_differences() {
        assert_eq!(m("0.3").complement(), Some(m("0.7")));
        assert_eq!(Mass::zero().complement(), Some(Mass::one()));
        assert_eq!(Mass::one().complement(), Some(Mass::zero()));
        assert_eq!(m("1.5").complement(), None);
        assert_eq!(m("0.25").checked_sub(&m("0.5")), None);
        assert_eq!(m("0.25").abs_diff(&m("0.5")), m("0.25"));
        assert_eq!(m("0.75").checked_sub(&m("0.5")), Some(m("0.25")));
    }

    #[test]
    fn long_products_stay_exact_and_fast() {
        // A 5,000-endpoint service: each endpoint's share is the product of
        // the complements before it and its own threshold. Their sum, with
        // what no rule took, is exactly 1.
        let n = 5_000u32;
        let mut rest = Mass::one();
        let mut total = Mass::zero();
        for i in 0..n - 1 {
            let k = ((1u64 << 31) as f64 / f64::from(n - i)).round() as u32;
            let p = Mass::from_kernel_units(k);
            total += &(&rest * &p);
            rest *= &p.complement().unwrap();
        }
        total += &rest;
        assert!(total.is_one(), "{total:?}");
    }

    #[test]
    fn converts_to_rationals_and_floats() {
        assert_eq!(m("0.125").to_rational(), rational("0.125"));
        assert_eq!(m("0").to_rational(), rational("0"));
        assert_eq!(m("0.3").to_f64(), 0.3);
        assert_eq!(Mass::from_kernel_units(1 << 30).to_f64(), 0.5);
        assert_eq!(m("0").to_f64(), 0.0);
        assert_eq!(m("12.5").to_f64(), 12.5);
        assert_eq!(
            m("0.1666666666666666666").to_decimal_places(10),
            "0.1666666667"
        );
        assert_eq!(m("0.00000000005").to_decimal_places(10), "0");
        assert_eq!(m("0.00000000015").to_decimal_places(10), "0.0000000002");
        assert_eq!(m("1").to_decimal_places(10), "1");
        assert_eq!(
            Mass::from_kernel_units(1).to_exact_decimal(),
            "0.0000000004656612873077392578125"
        );
    }

    fn decimal() -> impl Strategy<Value = String> {
        (0u64..=10_000_000_000, 0usize..=12).prop_map(|(d, scale)| {
            let s = format!("{d:0>width$}", width = scale + 1);
            let (int, frac) = s.split_at(s.len() - scale);
            if scale == 0 {
                int.to_string()
            } else {
                format!("{int}.{frac}")
            }
        })
    }

    fn mass() -> impl Strategy<Value = (Mass, BigRational, String)> {
        prop_oneof![
            decimal().prop_map(|s| (m(&s), rational(&s), s)),
            (0u32..=1 << 31).prop_map(|k| {
                let r = BigRational::new(BigInt::from(k), BigInt::from(1u64 << 31));
                (Mass::from_kernel_units(k), r, format!("k{k}"))
            }),
        ]
    }

    proptest! {
        #[test]
        fn arithmetic_agrees_with_rationals(
            (a, ra, _) in mass(),
            (b, rb, _) in mass(),
            (c, rc, _) in mass(),
        ) {
            prop_assert_eq!((&a * &b).to_rational(), &ra * &rb);
            prop_assert_eq!((&a + &b).to_rational(), &ra + &rb);
            prop_assert_eq!((&(&a * &b) + &c).to_rational(), &ra * &rb + &rc);
            prop_assert_eq!(a.cmp(&b), ra.cmp(&rb));
            prop_assert_eq!(a == b, ra == rb);
            prop_assert_eq!(a.abs_diff(&b).to_rational(), num_traits::Signed::abs(&(&ra - &rb)));
            let one = BigRational::one();
            prop_assert_eq!(
                a.complement().map(|x| x.to_rational()),
                (ra <= one).then(|| &one - &ra)
            );
            prop_assert_eq!(
                a.checked_sub(&b).map(|x| x.to_rational()),
                (ra >= rb).then(|| &ra - &rb)
            );
            let mut p = a.clone();
            p *= &b;
            prop_assert_eq!(p, &a * &b);
        }

        #[test]
        fn display_agrees_with_the_decimal_rendering(
            (a, _, _) in mass(),
            (b, _, _) in mass(),
        ) {
            // Products and sums of kernel units and decimals, as paths make.
            for x in [&a * &b, &a + &b, a.clone()] {
                let exact = BigDecimal::from_str(&x.to_exact_decimal()).unwrap();
                prop_assert_eq!(x.to_string(), old_format(&exact));
                prop_assert_eq!(x.to_rational(), rational(&x.to_exact_decimal()));
            }
        }
    }
}
