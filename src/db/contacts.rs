//! Contacts each phone learnt from the network: push names, the address book, senders of
//! inbound messages and has-whatsapp answers. Across phones, contacts are merged by
//! `contact_key`: the phone number's digits when known, the JID otherwise.

use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect, Set};

use crate::domain::contact::Contact;
use crate::domain::{Jid, PhoneNumber};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub phone: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub jid: String,
    pub contact_key: String,
    pub number: Option<String>,
    pub lid: Option<String>,
    pub name: Option<String>,
    pub push_name: Option<String>,
    pub on_whatsapp: Option<bool>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl From<Model> for Contact {
    fn from(row: Model) -> Self {
        Contact {
            phone: row.phone,
            jid: row.jid,
            key: row.contact_key,
            number: row.number,
            lid: row.lid,
            name: row.name,
            push_name: row.push_name,
            on_whatsapp: row.on_whatsapp,
            updated_at: row.updated_at,
        }
    }
}

/// What was learnt about a contact; `None` fields leave what is stored untouched.
#[derive(Debug, Clone, Default)]
pub struct Learnt {
    pub jid: Option<Jid>,
    pub lid: Option<String>,
    pub name: Option<String>,
    pub push_name: Option<String>,
    pub on_whatsapp: Option<bool>,
}

/// Inserts or updates contacts; only the fields that were learnt are overwritten.
pub async fn upsert(db: &impl ConnectionTrait, phone: &PhoneNumber, learnt: &[Learnt]) -> Result<(), DbErr> {
    let now = Utc::now();
    for item in learnt {
        let Some(jid) = &item.jid else { continue };
        let number = jid.phone_digits().map(str::to_owned);
        let key = number.clone().unwrap_or_else(|| jid.to_string());
        let mut update = Vec::new();
        if item.lid.is_some() {
            update.push(Column::Lid);
        }
        if item.name.is_some() {
            update.push(Column::Name);
        }
        if item.push_name.is_some() {
            update.push(Column::PushName);
        }
        if item.on_whatsapp.is_some() {
            update.push(Column::OnWhatsapp);
        }
        update.push(Column::UpdatedAt);
        Entity::insert(ActiveModel {
            phone: Set(phone.to_string()),
            jid: Set(jid.to_string()),
            contact_key: Set(key),
            number: Set(number),
            lid: Set(item.lid.clone()),
            name: Set(item.name.as_ref().map(|n| n.replace('\0', ""))),
            push_name: Set(item.push_name.as_ref().map(|n| n.replace('\0', ""))),
            on_whatsapp: Set(item.on_whatsapp),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([Column::Phone, Column::Jid])
                .update_columns(update)
                .to_owned(),
        )
        .exec(db)
        .await?;
    }
    Ok(())
}

/// The first `limit` contacts of one phone, ordered by key.
pub async fn of_phone(db: &impl ConnectionTrait, phone: &PhoneNumber, limit: u64) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::Phone.eq(phone.as_str()))
        .order_by_asc(Column::ContactKey)
        .limit(limit)
        .all(db)
        .await
}

/// Rows of every phone for one page of merged contacts (by key; all of them without a
/// `limit`), and the number of keys.
pub async fn merged_page(
    db: &impl ConnectionTrait,
    offset: u64,
    limit: Option<u64>,
) -> Result<(Vec<Model>, u64), DbErr> {
    let total = Entity::find()
        .select_only()
        .column(Column::ContactKey)
        .distinct()
        .count(db)
        .await?;
    let mut keys = Entity::find()
        .select_only()
        .column(Column::ContactKey)
        .distinct()
        .order_by_asc(Column::ContactKey);
    // SQLite accepts OFFSET only after LIMIT.
    if let Some(limit) = limit {
        keys = keys.offset(offset).limit(limit);
    }
    let keys: Vec<String> = keys.into_tuple().all(db).await?;
    if keys.is_empty() {
        return Ok((Vec::new(), total));
    }
    let rows = Entity::find()
        .filter(Column::ContactKey.is_in(keys))
        .order_by_asc(Column::ContactKey)
        .order_by_asc(Column::Phone)
        .all(db)
        .await?;
    Ok((rows, total))
}
