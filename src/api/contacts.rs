//! `/api/v1/user/contacts`: contacts learnt by every phone, merged across phones by
//! number, or one phone's own.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::error::Errors;
use super::error::statuses::*;
use super::pagination::{Pagination, page_params};
use super::phones::PhonePath;
use crate::api::AppState;
use crate::api::scheme::Owner;
use crate::domain::contact::{Contact, Person};

#[derive(Default)]
pub struct ContactsApi;

/// Largest page of merged contacts.
const MAX_LIMIT: u64 = 500;

/// A contact one phone learnt (from its address book, a message, or a lookup).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ContactView {
    /// The contact's JID.
    jid: String,
    /// The phone number's digits, when the JID carries one.
    number: Option<String>,
    /// The contact's LID, when known.
    lid: Option<String>,
    /// The name this phone's owner saved.
    name: Option<String>,
    /// The name the contact chose.
    push_name: Option<String>,
    /// Whether the contact is known to have WhatsApp.
    on_whatsapp: Option<bool>,
    /// When the phone last learnt something about the contact.
    updated_at: DateTime<Utc>,
}

impl From<Contact> for ContactView {
    fn from(contact: Contact) -> Self {
        Self {
            jid: contact.jid,
            number: contact.number,
            lid: contact.lid,
            name: contact.name,
            push_name: contact.push_name,
            on_whatsapp: contact.on_whatsapp,
            updated_at: contact.updated_at,
        }
    }
}

/// A phone that knows the contact, and the names it knows them by.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct KnownBy {
    /// The gateway phone that knows this contact.
    phone: String,
    /// The name this phone's owner saved.
    name: Option<String>,
    /// The name the contact chose, as this phone saw it.
    push_name: Option<String>,
}

/// One person, merged across the phones that know them.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MergedContact {
    /// The contact's JID.
    jid: String,
    /// The phone number's digits, when the JID carries one.
    number: Option<String>,
    /// The contact's LID, when a phone knows it.
    lid: Option<String>,
    /// The first saved name any phone has.
    name: Option<String>,
    /// The newest push name any phone saw.
    push_name: Option<String>,
    /// The phones that know this contact.
    phones: Vec<KnownBy>,
}

impl From<Person> for MergedContact {
    fn from(person: Person) -> Self {
        Self {
            jid: person.jid,
            number: person.number,
            lid: person.lid,
            name: person.name,
            push_name: person.push_name,
            phones: person
                .known_by
                .into_iter()
                .map(|k| KnownBy {
                    phone: k.phone,
                    name: k.name,
                    push_name: k.push_name,
                })
                .collect(),
        }
    }
}

/// One phone's contacts.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ContactList {
    data: Vec<ContactView>,
    /// More contacts exist than `limits.unpaginated_max` (the list stops there).
    truncated: bool,
}

/// The contacts of every phone, merged by person.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MergedList {
    data: Vec<MergedContact>,
    /// More contacts exist than `limits.unpaginated_max` (the list stops there; the
    /// paginated route has them all).
    truncated: bool,
}

/// A page of the contacts of every phone, merged by person.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MergedPage {
    data: Vec<MergedContact>,
    pagination: Pagination,
}

#[OpenApi(prefix_path = "/user/contacts", tag = "ApiTags::Contacts")]
impl ContactsApi {
    /// All contacts
    ///
    /// Contacts of every phone, merged by number: each lists the phones that know it. At
    /// most `limits.unpaginated_max` (10,000 by default), with `truncated: true` when there
    /// are more; `/user/contacts/pagination` pages through all of them.
    #[oai(path = "/", method = "get", operation_id = "listContacts")]
    async fn all(&self, _owner: Owner, state: Data<&AppState>) -> Result<Json<MergedList>, Errors<{ SIGNED_IN }>> {
        let cap = state.config.limits.unpaginated_max;
        let (people, total) = state.gateway.all_contacts(0, Some(cap)).await?;
        Ok(Json(MergedList {
            data: people.into_iter().map(MergedContact::from).collect(),
            truncated: total > cap,
        }))
    }

    /// Contacts, paginated
    ///
    /// The merged contacts of every phone, a page at a time.
    #[oai(path = "/pagination", method = "get", operation_id = "listContactsPaginated")]
    async fn paginated(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000000")))]
        page: Query<Option<u64>>,
        /// Contacts per page (default 50, at most 500).
        #[oai(validator(minimum(value = "1")))]
        limit: Query<Option<u64>>,
    ) -> Result<Json<MergedPage>, Errors<{ SIGNED_IN | BAD_REQUEST }>> {
        let (page, limit) = page_params(page.0, limit.0, 50, MAX_LIMIT)?;
        let offset = (page - 1).saturating_mul(limit);
        let (people, total) = state.gateway.all_contacts(offset, Some(limit)).await?;
        Ok(Json(MergedPage {
            data: people.into_iter().map(MergedContact::from).collect(),
            pagination: Pagination::new(page, limit, total),
        }))
    }

    /// One phone's contacts
    ///
    /// The contacts a single phone learnt: at most `limits.unpaginated_max`, with
    /// `truncated: true` when there are more.
    #[oai(path = "/:phone", method = "get", operation_id = "listPhoneContacts")]
    async fn of_phone(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
    ) -> Result<Json<ContactList>, Errors<{ SIGNED_IN | PHONE }>> {
        let phone = phone.0.0;
        let cap = state.config.limits.unpaginated_max;
        let mut rows = state.gateway.phone(&phone)?.contacts(cap.saturating_add(1)).await?;
        let truncated = rows.len() as u64 > cap;
        rows.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
        Ok(Json(ContactList {
            data: rows.into_iter().map(ContactView::from).collect(),
            truncated,
        }))
    }
}
