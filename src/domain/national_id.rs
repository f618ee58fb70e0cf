//! The national ID (身分證字號) and resident certificate number, parsed once at
//! the edge. A `NationalId` that exists has passed its check digit; its
//! `Display` and `Debug` are masked so that a whole ID can only reach a log
//! line, an error or an answer through the explicit [`NationalId::expose`].

use std::fmt;

/// Why a string is not a national ID. The message never repeats the whole
/// input, because the input is personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NationalIdError {
    #[error(
        "national ID has the wrong format (expected a letter and 9 digits, or 2 letters and 8 digits)"
    )]
    Format,
    #[error("national ID {0} fails its check digit")]
    CheckDigit(String),
}

/// A national ID or resident certificate number, upper case, check digit valid.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NationalId(String);

/// The two-digit code of each leading letter (DOMAIN.md).
fn letter_code(c: u8) -> Option<u32> {
    const CODES: [u32; 26] = [
        10, 11, 12, 13, 14, 15, 16, 17, 34, 18, 19, 20, 21, 22, 35, 23, 24, 25, 26, 27, 28, 29, 32,
        30, 31, 33,
    ];
    c.is_ascii_uppercase().then(|| CODES[(c - b'A') as usize])
}

impl NationalId {
    /// Parses any of the three formats of DOMAIN.md, upper-casing the input.
    /// The old resident format (two letters) stays valid until its retirement
    /// on 2031-01-01; retiring it is a later, dated change.
    pub fn parse(raw: &str) -> Result<Self, NationalIdError> {
        let s = raw.trim().to_ascii_uppercase();
        let b = s.as_bytes();
        if b.len() != 10 || !b[2..].iter().all(u8::is_ascii_digit) {
            return Err(NationalIdError::Format);
        }
        let first = letter_code(b[0]).ok_or(NationalIdError::Format)?;
        let second = match b[1] {
            b'1' | b'2' | b'8' | b'9' => u32::from(b[1] - b'0'),
            c => letter_code(c).ok_or(NationalIdError::Format)? % 10,
        };
        let digits: Vec<u32> = b[2..].iter().map(|d| u32::from(d - b'0')).collect();
        let weights = [7, 6, 5, 4, 3, 2, 1, 1];
        let sum = first / 10
            + 9 * (first % 10)
            + 8 * second
            + digits.iter().zip(weights).map(|(d, w)| d * w).sum::<u32>();
        if sum % 10 != 0 {
            return Err(NationalIdError::CheckDigit(mask(&s)));
        }
        Ok(Self(s))
    }

    /// The whole ID, for the registry payload and the database only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The masked form shown everywhere else, e.g. `A12*****89`.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Masks anything that may be a national ID: the first three and the last
/// two characters stay, the rest become `*`. Short strings are fully masked.
pub fn mask(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 6 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < 3 || i >= n - 2 { *c } else { '*' })
        .collect()
}

/// The one way a whole ID leaves the type through serde, for the values the
/// store writes (a JSON parameter of an upsert, a resync scope in the audit
/// trail): `#[serde(with = "crate::domain::whole_id")]`. `NationalId` has no
/// `Serialize` of its own, so a value that carries one cannot put the whole
/// ID into JSON by accident; reading it back parses and checks it again.
pub mod whole_id {
    use super::NationalId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &NationalId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(id.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NationalId, D::Error> {
        let raw = String::deserialize(d)?;
        NationalId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// [`whole_id`] for an optional ID: `#[serde(with = "crate::domain::whole_id_opt")]`.
pub mod whole_id_opt {
    use super::NationalId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &Option<NationalId>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.serialize_some(id.expose()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NationalId>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|raw| NationalId::parse(&raw).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl fmt::Display for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NationalId({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_valid_samples_parse() {
        for id in [
            "A123456789",
            "F131104093",
            "A800000014",
            "A900207177",
            "AA00000009",
            "AD30196818",
        ] {
            assert!(NationalId::parse(id).is_ok(), "{id} should be valid");
        }
    }

    #[test]
    fn the_documented_invalid_samples_fail_their_check_digit() {
        for id in ["A123456788", "A800000000", "AA00000000"] {
            assert!(
                matches!(NationalId::parse(id), Err(NationalIdError::CheckDigit(_))),
                "{id} should fail its check digit"
            );
        }
    }

    #[test]
    fn malformed_ids_are_format_errors() {
        for id in [
            "",
            "A12345678",
            "A1234567890",
            "1123456789",
            "A323456789",
            "a12345678x",
        ] {
            assert_eq!(NationalId::parse(id), Err(NationalIdError::Format), "{id}");
        }
    }

    #[test]
    fn lower_case_input_is_stored_upper_case() {
        assert_eq!(
            NationalId::parse("a123456789").unwrap().expose(),
            "A123456789"
        );
    }

    #[test]
    fn the_storage_helpers_write_the_whole_id_and_read_it_back_checked() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Stored {
            #[serde(with = "whole_id")]
            id: NationalId,
            #[serde(with = "whole_id_opt")]
            maybe: Option<NationalId>,
        }
        let v = Stored {
            id: NationalId::parse("A123456789").unwrap(),
            maybe: None,
        };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"id":"A123456789","maybe":null}"#);
        assert_eq!(serde_json::from_str::<Stored>(&json).unwrap(), v);
        let bad = r#"{"id":"A123456788","maybe":null}"#;
        let err = serde_json::from_str::<Stored>(bad).unwrap_err().to_string();
        assert!(!err.contains("A123456788"), "{err}");
    }

    #[test]
    fn display_debug_and_errors_never_show_the_whole_id() {
        let id = NationalId::parse("A123456789").unwrap();
        assert_eq!(id.to_string(), "A12*****89");
        assert!(!format!("{id:?}").contains("A123456789"));
        let err = NationalId::parse("A123456788").unwrap_err().to_string();
        assert!(
            err.contains("A12*****88") && !err.contains("A123456788"),
            "{err}"
        );
    }
}

/// Masks every run in `text` shaped like a national ID (a letter, a letter
/// or digit, eight digits: the shapes [`NationalId::parse`] accepts, in
/// either case), for messages that quote input we did not parse. A run is
/// masked even when it touches other letters or digits (`A1234567891`,
/// `xA123456789`): a caller who glues a character to an ID must not get it
/// echoed whole. Where shapes overlap, the middle of each is masked, so the
/// true ID inside shows no more than [`mask`] would show of it.
pub fn mask_ids_in_text(s: &str) -> std::borrow::Cow<'_, str> {
    let chars: Vec<char> = s.chars().collect();
    let shaped = |i: usize| {
        let w = &chars[i..i + 10];
        w[0].is_ascii_alphabetic()
            && w[1].is_ascii_alphanumeric()
            && w[2..].iter().all(char::is_ascii_digit)
    };
    let mut hidden = vec![false; chars.len()];
    let mut any = false;
    for i in (0..chars.len().saturating_sub(9)).filter(|&i| shaped(i)) {
        hidden[i + 3..i + 8].iter_mut().for_each(|h| *h = true);
        any = true;
    }
    if !any {
        return std::borrow::Cow::Borrowed(s);
    }
    let masked = chars
        .iter()
        .zip(hidden)
        .map(|(c, h)| if h { '*' } else { *c })
        .collect();
    std::borrow::Cow::Owned(masked)
}

/// [`mask_ids_in_text`] as an owned `String`, for the callers that keep one.
pub fn mask_ids_in(text: &str) -> String {
    mask_ids_in_text(text).into_owned()
}

#[cfg(test)]
mod mask_tests {
    use super::{NationalId, mask, mask_ids_in, mask_ids_in_text};

    #[test]
    fn id_shaped_runs_inside_text_are_masked() {
        assert_eq!(
            mask_ids_in("bad value \"a123456789\" here"),
            "bad value \"a12*****89\" here"
        );
        assert_eq!(mask_ids_in("AA00000009,x"), "AA0*****09,x");
        assert_eq!(mask_ids_in("order 12345678901"), "order 12345678901");
    }

    #[test]
    fn an_id_touching_letters_or_digits_is_masked_all_the_same() {
        for (text, want) in [
            ("A1234567891", "A12*****891"),
            ("A123456789x", "A12*****89x"),
            ("xA123456789", "xA1******89"),
            ("7A123456789", "7A12*****89"),
            ("unknown field `A123456789x`", "unknown field `A12*****89x`"),
            ("/nope/A123456789x", "/nope/A12*****89x"),
            ("A123456789A123456789", "A12*****89A12*****89"),
            ("AD301968181", "AD3******81"),
            ("a800000014z", "a80*****14z"),
        ] {
            let masked = mask_ids_in_text(text);
            assert_eq!(masked, want, "{text}");
            for id in ["A123456789", "AD30196818", "A800000014"] {
                assert!(
                    !masked.to_ascii_uppercase().contains(id),
                    "{text}: {masked}"
                );
            }
        }
    }

    #[test]
    fn a_lone_id_is_masked_as_its_type_masks_it() {
        let id = NationalId::parse("F131104093").unwrap();
        assert_eq!(mask_ids_in_text(id.expose()), id.masked());
        assert_eq!(mask_ids_in_text("A123456789"), mask("A123456789"));
    }

    #[test]
    fn text_without_an_id_shape_is_borrowed_unchanged() {
        for text in [
            "",
            "no route /api/v2",
            "12345678901",
            "AB1234567",
            "ÄÖ 1234",
        ] {
            assert!(matches!(
                mask_ids_in_text(text),
                std::borrow::Cow::Borrowed(t) if t == text
            ));
        }
    }
}
