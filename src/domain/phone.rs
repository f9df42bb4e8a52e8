//! Phone numbers, parsed and validated with libphonenumber's metadata and kept in E.164.

use std::fmt;

use phonenumber::country;
use serde::{Deserialize, Serialize};

use super::Jid;

/// A valid phone number in E.164 form, e.g. `+12015550123`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("`{0}` is not a country code; use ISO 3166 alpha-2, e.g. US, GB, BR")]
    UnknownCountry(String),
    #[error("`{0}` is not a phone number; include the country code, e.g. +12015550123")]
    Unparsable(String),
    #[error("`{0}` is not a valid phone number for its country")]
    Invalid(String),
}

impl PhoneNumber {
    /// Parses user input. With `country` (ISO 3166 alpha-2) a national number is accepted;
    /// without it the number must carry its country code (a leading `+` is optional).
    pub fn parse(input: &str, country: Option<&str>) -> Result<Self, PhoneNumberError> {
        let input = input.trim();
        let region = match country.map(str::trim).filter(|c| !c.is_empty()) {
            Some(code) => Some(
                code.to_ascii_uppercase()
                    .parse::<country::Id>()
                    .map_err(|_| PhoneNumberError::UnknownCountry(code.to_owned()))?,
            ),
            None => None,
        };
        let candidate = if region.is_none() && !input.starts_with('+') {
            format!("+{input}")
        } else {
            input.to_owned()
        };
        let number =
            phonenumber::parse(region, &candidate).map_err(|_| PhoneNumberError::Unparsable(input.to_owned()))?;
        if !number.is_valid() {
            return Err(PhoneNumberError::Invalid(input.to_owned()));
        }
        Ok(Self(number.format().mode(phonenumber::Mode::E164).to_string()))
    }

    /// Parses the `{phone}` of a URL path: `+12015550123`, `12015550123` or `%2B12015550123`.
    pub fn parse_path(segment: &str) -> Result<Self, PhoneNumberError> {
        let segment = segment.trim();
        let segment = segment
            .strip_prefix("%2B")
            .or_else(|| segment.strip_prefix("%2b"))
            .unwrap_or(segment);
        Self::parse(segment, None)
    }

    /// `+12015550123`
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `12015550123`
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// The ISO 3166 alpha-2 region of the number, when libphonenumber knows it.
    pub fn country(&self) -> Option<String> {
        phonenumber::parse(None, &self.0)
            .ok()
            .and_then(|n| n.country().id())
            .map(|id| id.as_ref().to_owned())
    }

    /// The WhatsApp user JID of this number: `12015550123@s.whatsapp.net`.
    pub fn jid(&self) -> Jid {
        Jid::user(self.digits())
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneNumberError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value, None)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_e164() {
        for input in ["+12015550123", "12015550123", "+1 201-555-0123", "%2B12015550123"] {
            assert_eq!(
                PhoneNumber::parse_path(input).unwrap().as_str(),
                "+12015550123",
                "{input}"
            );
        }
        let national = PhoneNumber::parse("(201) 555-0123", Some("us")).unwrap();
        assert_eq!(national.as_str(), "+12015550123");
        assert_eq!(national.digits(), "12015550123");
        assert_eq!(national.country().as_deref(), Some("US"));
        let gb = PhoneNumber::parse("07400 123456", Some("GB")).unwrap();
        assert_eq!(gb.as_str(), "+447400123456");
    }

    #[test]
    fn refuses_invalid_numbers_and_countries() {
        assert!(matches!(
            PhoneNumber::parse("+1 201 555", None),
            Err(PhoneNumberError::Invalid(_))
        ));
        assert!(matches!(
            PhoneNumber::parse("hello", None),
            Err(PhoneNumberError::Unparsable(_))
        ));
        assert!(matches!(
            PhoneNumber::parse("123", Some("XX")),
            Err(PhoneNumberError::UnknownCountry(_))
        ));
        assert!(PhoneNumber::parse("+999123456789", None).is_err());
    }
}
