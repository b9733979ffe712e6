//! Kubernetes resource quantities ("500m", "2", "1.5", "256Mi", "4Gi", "1e3"), parsed
//! exactly in integer arithmetic (no floating point rounding surprises).

use std::fmt;

/// A non-negative quantity, held in nano-units (10^-9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    nanos: u128,
}

/// Why a quantity did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is not a Kubernetes quantity ({reason}); use e.g. \"500m\", \"2\", \"256Mi\" or \"4Gi\""
)]
pub struct InvalidQuantity {
    text: String,
    reason: &'static str,
}

impl Quantity {
    /// Parses a quantity.
    ///
    /// # Errors
    /// [`InvalidQuantity`] for empty, negative, malformed or absurdly large input.
    pub fn parse(text: &str) -> Result<Self, InvalidQuantity> {
        let invalid = |reason| InvalidQuantity {
            text: text.to_owned(),
            reason,
        };
        let body = text.strip_prefix('+').unwrap_or(text);
        if body.starts_with('-') {
            return Err(invalid("negative"));
        }
        let number_len = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (number, suffix) = body.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid("no number"));
        }
        if fraction.contains('.') {
            return Err(invalid("two decimal points"));
        }
        let (binary_power, decimal_exponent) =
            parse_suffix(suffix).ok_or(invalid("unknown suffix"))?;
        let digits: u128 = format!("{whole}{fraction}")
            .parse()
            .map_err(|_| invalid("too many digits"))?;
        let fraction_len = i32::try_from(fraction.len()).map_err(|_| invalid("too many digits"))?;
        let scaled = digits
            .checked_mul(
                1024u128
                    .checked_pow(binary_power)
                    .ok_or(invalid("too large"))?,
            )
            .ok_or(invalid("too large"))?;
        let exponent = 9 + decimal_exponent - fraction_len;
        let nanos = if exponent >= 0 {
            let factor = 10u128
                .checked_pow(exponent.unsigned_abs())
                .ok_or(invalid("too large"))?;
            scaled.checked_mul(factor).ok_or(invalid("too large"))?
        } else {
            let divisor = 10u128
                .checked_pow(exponent.unsigned_abs())
                .ok_or(invalid("too small"))?;
            scaled.div_ceil(divisor)
        };
        Ok(Self { nanos })
    }

    /// In thousandths, rounded up (CPU millicores).
    pub fn millis(self) -> u64 {
        saturate(self.nanos.div_ceil(1_000_000))
    }

    /// In whole units, rounded up (memory bytes).
    pub fn units(self) -> u64 {
        saturate(self.nanos.div_ceil(1_000_000_000))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}m", self.millis())
    }
}

fn saturate(value: u128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// (power of 1024, power of 10) for a suffix.
fn parse_suffix(suffix: &str) -> Option<(u32, i32)> {
    let binary = match suffix {
        "Ki" => Some(1),
        "Mi" => Some(2),
        "Gi" => Some(3),
        "Ti" => Some(4),
        "Pi" => Some(5),
        "Ei" => Some(6),
        _ => None,
    };
    if let Some(power) = binary {
        return Some((power, 0));
    }
    let decimal = match suffix {
        "n" => -9,
        "u" => -6,
        "m" => -3,
        "" => 0,
        "k" => 3,
        "M" => 6,
        "G" => 9,
        "T" => 12,
        "P" => 15,
        "E" => 18,
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let exponent: i32 = exponent.parse().ok()?;
            return (-30..=30).contains(&exponent).then_some((0, exponent));
        }
    };
    Some((0, decimal))
}

#[cfg(test)]
mod tests {
    use super::Quantity;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap()
    }

    #[test]
    fn cpu_forms() {
        assert_eq!(q("500m").millis(), 500);
        assert_eq!(q("2").millis(), 2000);
        assert_eq!(q("0.5").millis(), 500);
        assert_eq!(q("1.25").millis(), 1250);
        assert_eq!(q("100u").millis(), 1, "rounded up to a millicore");
        assert_eq!(q("+3").millis(), 3000);
    }

    #[test]
    fn memory_forms() {
        assert_eq!(q("256Mi").units(), 256 * 1024 * 1024);
        assert_eq!(q("4Gi").units(), 4 << 30);
        assert_eq!(q("1G").units(), 1_000_000_000);
        assert_eq!(q("1.5Ki").units(), 1536);
        assert_eq!(q("1e3").units(), 1000);
        assert_eq!(q("128974848").units(), 128_974_848);
    }

    #[test]
    fn bad_quantities_are_rejected_with_a_hint() {
        for bad in ["", "abc", "-1", "1.2.3", "5 Gi", "5gi", "1e99", "12Zi", "."] {
            let error = Quantity::parse(bad).unwrap_err();
            assert!(error.to_string().contains("256Mi"), "{bad}: {error}");
        }
    }

    #[test]
    fn ordering_compares_values_across_suffixes() {
        assert!(q("1Gi") > q("1G"));
        assert!(q("500m") < q("1"));
        assert_eq!(q("1000m"), q("1"));
    }
}
