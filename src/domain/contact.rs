//! The people the phones know: each phone's [`Contact`]s, and one [`Person`] for the
//! contacts of every phone that share a number.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// A contact one phone learnt, from its address book, a message or a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The gateway phone that knows the contact (E.164).
    pub phone: String,
    pub jid: String,
    /// What the contacts of several phones are merged by: the number's digits when
    /// known, the JID otherwise.
    pub key: String,
    /// The phone number's digits, when the JID carries one.
    pub number: Option<String>,
    pub lid: Option<String>,
    /// The name the phone's owner saved.
    pub name: Option<String>,
    /// The name the contact chose.
    pub push_name: Option<String>,
    /// Whether the contact is known to have WhatsApp.
    pub on_whatsapp: Option<bool>,
    /// When the phone last learnt something about the contact.
    pub updated_at: DateTime<Utc>,
}

/// One person, merged across the phones that know them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub jid: String,
    pub number: Option<String>,
    pub lid: Option<String>,
    /// The first saved name any phone has.
    pub name: Option<String>,
    /// The newest push name any phone saw.
    pub push_name: Option<String>,
    /// The phones that know this person, and the names each knows them by.
    pub known_by: Vec<KnownBy>,
}

/// A phone that knows a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownBy {
    pub phone: String,
    pub name: Option<String>,
    pub push_name: Option<String>,
}

/// One person per key, in key order, from contacts ordered by key.
pub fn merge(contacts: Vec<Contact>) -> Vec<Person> {
    let mut merged: BTreeMap<String, Person> = BTreeMap::new();
    let mut newest: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for contact in contacts {
        let person = merged.entry(contact.key.clone()).or_insert_with(|| Person {
            jid: contact.jid.clone(),
            number: contact.number.clone(),
            lid: None,
            name: None,
            push_name: None,
            known_by: Vec::new(),
        });
        person.lid = person.lid.take().or(contact.lid.clone());
        person.name = person.name.take().or(contact.name.clone());
        let seen = newest.entry(contact.key.clone()).or_insert(contact.updated_at);
        if contact.push_name.is_some() && (person.push_name.is_none() || contact.updated_at >= *seen) {
            person.push_name = contact.push_name.clone();
            *seen = contact.updated_at;
        }
        person.known_by.push(KnownBy {
            phone: contact.phone,
            name: contact.name,
            push_name: contact.push_name,
        });
    }
    merged.into_values().collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn contact(phone: &str, name: Option<&str>, push_name: Option<&str>, at: i64) -> Contact {
        Contact {
            phone: phone.into(),
            jid: "12015550150@s.whatsapp.net".into(),
            key: "12015550150".into(),
            number: Some("12015550150".into()),
            lid: None,
            name: name.map(Into::into),
            push_name: push_name.map(Into::into),
            on_whatsapp: Some(true),
            updated_at: Utc.timestamp_opt(at, 0).unwrap(),
        }
    }

    #[test]
    fn a_person_known_to_two_phones_is_one_with_the_first_saved_name_and_the_newest_push_name() {
        let mut other = contact("+12015550199", None, None, 0);
        other.key = "12015550199".into();
        other.jid = "12015550199@s.whatsapp.net".into();
        let people = merge(vec![
            contact("+12015550100", Some("Ana (work)"), Some("Ana"), 10),
            contact("+12015550101", Some("Ana P."), Some("Ana ☀"), 20),
            contact("+12015550102", None, None, 30),
            other,
        ]);
        assert_eq!(people.len(), 2);
        let ana = &people[0];
        assert_eq!(ana.name.as_deref(), Some("Ana (work)"));
        assert_eq!(ana.push_name.as_deref(), Some("Ana ☀"));
        let phones: Vec<_> = ana.known_by.iter().map(|k| k.phone.as_str()).collect();
        assert_eq!(phones, ["+12015550100", "+12015550101", "+12015550102"]);
        assert_eq!(ana.known_by[1].name.as_deref(), Some("Ana P."));
    }
}
