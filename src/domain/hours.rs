//! Certified hours: an exact decimal with one decimal place, kept as tenths so
//! that no float ever touches a learner's figure.

use std::fmt;

/// The largest figure the registries accept (999.9 hours).
pub const MAX_TENTHS: u32 = 9999;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("hours {0:?} must be a decimal with exactly one decimal place, e.g. \"2.0\"")]
    Format(String),
    #[error("hours {0:?} must not be negative")]
    Negative(String),
    #[error("hours {0:?} exceed 999.9")]
    TooLarge(String),
}

/// A non-negative number of hours with one decimal place, at most 999.9.
/// Zero is representable because a course's `digital_hours` may be zero and a
/// certified figure of zero means "not certified"; only positive hours are
/// ever sent (eligibility sees to that).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hours(u32);

impl Hours {
    pub const ZERO: Hours = Hours(0);

    pub fn parse(raw: &str) -> Result<Self, HoursError> {
        let err = || HoursError::Format(raw.to_string());
        if raw.starts_with('-') {
            return Err(HoursError::Negative(raw.to_string()));
        }
        let (int, frac) = raw.split_once('.').ok_or_else(err)?;
        let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits_only(int) || frac.len() != 1 || !digits_only(frac) || int.len() > 4 {
            return Err(err());
        }
        let tenths =
            int.parse::<u32>().map_err(|_| err())? * 10 + frac.parse::<u32>().map_err(|_| err())?;
        Self::from_tenths(tenths).ok_or_else(|| HoursError::TooLarge(raw.to_string()))
    }

    pub fn from_tenths(tenths: u32) -> Option<Self> {
        (tenths <= MAX_TENTHS).then_some(Self(tenths))
    }

    pub fn tenths(self) -> u32 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Hours) -> Option<Hours> {
        Self::from_tenths(self.0 + other.0)
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

impl fmt::Debug for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hours({self})")
    }
}

impl serde::Serialize for Hours {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Hours {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Hours::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_decimal_place_round_trips() {
        for s in ["0.0", "2.0", "1.5", "999.9", "12.3"] {
            assert_eq!(Hours::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn malformed_negative_and_too_large_figures_are_refused() {
        for s in ["2", "2.00", ".5", "2.", "abc", "1e3", "+2.0", " 2.0", "2,0"] {
            assert!(matches!(Hours::parse(s), Err(HoursError::Format(_))), "{s}");
        }
        assert!(matches!(Hours::parse("-1.0"), Err(HoursError::Negative(_))));
        assert!(matches!(
            Hours::parse("1000.0"),
            Err(HoursError::TooLarge(_))
        ));
    }

    #[test]
    fn sums_are_exact() {
        let a = Hours::parse("0.1").unwrap();
        let b = Hours::parse("0.2").unwrap();
        assert_eq!(a.checked_add(b).unwrap(), Hours::parse("0.3").unwrap());
    }
}
