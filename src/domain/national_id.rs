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

/// Masks every run in `text` shaped like a national ID, for any text that
/// came from outside (a registry's message or error body, a request part, an
/// input line quoted back). See [`mask_ids_in_text`]; this owned form is for
/// callers that keep a `String`.
pub fn mask_ids_in(text: &str) -> String {
    mask_ids_in_text(text).into_owned()
}

/// The one masking function for text we did not build ourselves: every
/// substring shaped like a national ID (a letter and 9 digits) or a resident
/// certificate number (2 letters and 8 digits), either case, becomes its
/// [`mask`], wherever it stands. Unlike a word match, a run glued to other
/// letters or digits (`personA123456789`, `A1234567890`) is masked too: a
/// registry or a client may format its text any way it likes, and a whole
/// ID must not get through because it touched a letter. Text with nothing
/// to mask is returned as it is, without a copy.
///
/// Where a two-letter reading and a letter-and-9-digit reading overlap
/// (`XA123456789`), the latter wins, so the masked ID reads as it would on
/// its own (`XA12*****89`). Over-masking an order number that happens to
/// have the shape is the price of never letting an ID through.
pub fn mask_ids_in_text(s: &str) -> std::borrow::Cow<'_, str> {
    let b = s.as_bytes();
    let letter_and_nine = |i: usize| {
        i + 10 <= b.len()
            && b[i].is_ascii_alphabetic()
            && b[i + 1..i + 10].iter().all(u8::is_ascii_digit)
    };
    let two_letters_and_eight = |i: usize| {
        i + 10 <= b.len()
            && b[i].is_ascii_alphabetic()
            && b[i + 1].is_ascii_alphabetic()
            && b[i + 2..i + 10].iter().all(u8::is_ascii_digit)
    };
    let mut out: Option<String> = None;
    let (mut copied, mut i) = (0, 0);
    while i + 10 <= b.len() {
        let id_here = letter_and_nine(i) || (two_letters_and_eight(i) && !letter_and_nine(i + 1));
        if !id_here {
            i += 1;
            continue;
        }
        // The window is ASCII, so both of its ends are char boundaries.
        let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
        o.push_str(&s[copied..i]);
        o.push_str(&mask(&s[i..i + 10]));
        i += 10;
        copied = i;
    }
    match out {
        None => std::borrow::Cow::Borrowed(s),
        Some(mut o) => {
            o.push_str(&s[copied..]);
            std::borrow::Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod mask_tests {
    use super::{mask_ids_in, mask_ids_in_text};
    use std::borrow::Cow;

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
    fn an_id_glued_to_letters_or_digits_is_masked_all_the_same() {
        assert_eq!(mask_ids_in_text("personA123456789"), "personA12*****89");
        assert_eq!(mask_ids_in_text("A123456789x"), "A12*****89x");
        assert_eq!(mask_ids_in_text("A1234567890"), "A12*****890");
        assert_eq!(mask_ids_in_text("7A123456789"), "7A12*****89");
        assert_eq!(mask_ids_in_text("XA123456789"), "XA12*****89");
        assert_eq!(mask_ids_in_text("id=a123456789;"), "id=a12*****89;");
    }

    #[test]
    fn resident_certificate_shapes_are_masked_too() {
        assert_eq!(mask_ids_in_text("AA00000009"), "AA0*****09");
        assert_eq!(mask_ids_in_text("xAD30196818y"), "xAD3*****18y");
        assert_eq!(mask_ids_in_text("ad30196818"), "ad3*****18");
    }

    #[test]
    fn every_id_in_a_text_is_masked_and_the_rest_kept() {
        let text = "2 records: A123456789 (rejected), B100000019; 中文F131104093。";
        assert_eq!(
            mask_ids_in_text(text),
            "2 records: A12*****89 (rejected), B10*****19; 中文F13*****93。"
        );
    }

    #[test]
    fn text_without_an_id_is_borrowed_unchanged() {
        for text in [
            "",
            "order 12345678901",
            "A12345678",
            "course C-2026-0042",
            "é",
        ] {
            assert!(
                matches!(mask_ids_in_text(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }
}
