//! The seed's recipient rules: with `@` the recipient is a JID as given; without `@` but
//! with a country it is a phone number of that country, validated by libphonenumber;
//! with neither it must be 7 to 15 digits (a leading `+` is allowed) and becomes
//! `<digits>@s.whatsapp.net`. An explicit `jid` overrides `recipient`.

use super::{Jid, JidError, PhoneNumber, PhoneNumberError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    #[error("a recipient is required: `recipient` (a number or a JID) or `jid`")]
    Missing,
    #[error(transparent)]
    Jid(#[from] JidError),
    #[error(transparent)]
    Phone(#[from] PhoneNumberError),
    #[error(
        "`{0}` is not a recipient: use a JID (user@server), a number with `country`, or 7 to 15 digits with country code"
    )]
    Digits(String),
}

/// Resolves where a message goes.
pub fn resolve(recipient: Option<&str>, country: Option<&str>, jid: Option<&str>) -> Result<Jid, RecipientError> {
    if let Some(jid) = jid.map(str::trim).filter(|j| !j.is_empty()) {
        return Ok(jid.parse()?);
    }
    let recipient = recipient
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or(RecipientError::Missing)?;
    if recipient.contains('@') {
        return Ok(recipient.parse()?);
    }
    if let Some(country) = country.map(str::trim).filter(|c| !c.is_empty()) {
        return Ok(PhoneNumber::parse(recipient, Some(country))?.jid());
    }
    let digits = recipient.strip_prefix('+').unwrap_or(recipient);
    if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Jid::user(digits))
    } else {
        Err(RecipientError::Digits(recipient.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_seed_rules() {
        let jid = |s: &str| s.parse::<Jid>().unwrap();
        assert_eq!(
            resolve(Some("120363025246125486@g.us"), None, None).unwrap(),
            jid("120363025246125486@g.us")
        );
        assert_eq!(
            resolve(Some("(201) 555-0123"), Some("US"), None).unwrap(),
            jid("12015550123@s.whatsapp.net")
        );
        assert_eq!(
            resolve(Some("12015550123"), None, None).unwrap(),
            jid("12015550123@s.whatsapp.net")
        );
        assert_eq!(
            resolve(Some("+4915112345678"), None, None).unwrap(),
            jid("4915112345678@s.whatsapp.net")
        );
        assert_eq!(
            resolve(Some("ignored"), None, Some("12015550199@s.whatsapp.net")).unwrap(),
            jid("12015550199@s.whatsapp.net")
        );
    }

    #[test]
    fn refuses_everything_else() {
        assert!(matches!(
            resolve(Some("123456"), None, None),
            Err(RecipientError::Digits(_))
        ));
        assert!(matches!(
            resolve(Some("1234567890123456"), None, None),
            Err(RecipientError::Digits(_))
        ));
        assert!(matches!(
            resolve(Some("201-555-0123"), None, None),
            Err(RecipientError::Digits(_))
        ));
        assert!(matches!(
            resolve(Some("5550123"), Some("US"), None),
            Err(RecipientError::Phone(_))
        ));
        assert!(matches!(
            resolve(Some("x@example.com"), None, None),
            Err(RecipientError::Jid(_))
        ));
        assert!(matches!(resolve(None, None, None), Err(RecipientError::Missing)));
        assert!(matches!(
            resolve(Some("  "), None, Some("")),
            Err(RecipientError::Missing)
        ));
    }
}
