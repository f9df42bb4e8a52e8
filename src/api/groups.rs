//! `/api/v1/user/phones/{phone}/groups`: the phone's WhatsApp groups, served from the
//! cache actor (entries live `cache.groups_ttl`, 4 minutes by default).

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::error::statuses::*;
use super::error::{ApiError, Errors};
use super::phones::PhonePath;
use crate::api::AppState;
use crate::api::scheme::Owner;
use crate::domain::{GROUP_SERVER, Jid};
use crate::engine::Group;

#[derive(Default)]
pub struct GroupsApi;

/// A group the phone is in.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct GroupSummary {
    /// The group's JID (`…@g.us`).
    jid: String,
    /// The group's name.
    subject: String,
    /// The group's description.
    description: Option<String>,
    /// Who created the group (a JID).
    owner: Option<String>,
    /// When the group was created.
    created_at: Option<DateTime<Utc>>,
    /// Number of participants.
    size: u64,
}

impl From<&Group> for GroupSummary {
    fn from(g: &Group) -> Self {
        Self {
            jid: g.jid.to_string(),
            subject: g.subject.clone(),
            description: g.description.clone(),
            owner: g.owner.as_ref().map(ToString::to_string),
            created_at: g.created_at,
            size: g.participants.len() as u64,
        }
    }
}

/// A member of a group.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ParticipantView {
    /// The member (a JID).
    jid: String,
    /// Whether the member is an admin.
    admin: bool,
    /// Whether the member is the group's creator (super admin).
    super_admin: bool,
}

/// A group with its participants.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct GroupDetail {
    #[oai(flatten)]
    summary: GroupSummary,
    participants: Vec<ParticipantView>,
}

/// The phone's groups, and whether they came from the cache.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct GroupList {
    data: Vec<GroupSummary>,
    /// True when served from the cache, false when fetched from WhatsApp for this request.
    cached: bool,
    /// When the data was fetched from WhatsApp.
    cached_at: DateTime<Utc>,
}

/// One group, and whether it came from the cache.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct GroupResponse {
    data: GroupDetail,
    /// True when served from the cache, false when fetched from WhatsApp for this request.
    cached: bool,
    /// When the data was fetched from WhatsApp.
    cached_at: DateTime<Utc>,
}

#[OpenApi(tag = "ApiTags::Groups")]
impl GroupsApi {
    /// List groups
    ///
    /// The groups the phone is a member of. Cached for 4 minutes (`cache.groups_ttl`);
    /// `refresh=true` fetches anew. Concurrent requests share one fetch.
    #[oai(path = "/user/phones/:phone/groups", method = "get", operation_id = "listGroups")]
    async fn list(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        /// Bypass the cache.
        refresh: Query<Option<bool>>,
    ) -> Result<Json<GroupList>, Errors<{ SIGNED_IN | PHONE | CONFLICT }>> {
        let phone = phone.0.0;
        let cached = state.gateway.phone(&phone)?.groups(refresh.0.unwrap_or(false)).await?;
        let data = cached.value.iter().map(GroupSummary::from).collect();
        Ok(Json(GroupList {
            data,
            cached: cached.from_cache,
            cached_at: cached.filled_at,
        }))
    }

    /// Get a group
    ///
    /// One group's details and participants. Cached like the list.
    #[oai(
        path = "/user/phones/:phone/groups/:group_id",
        method = "get",
        operation_id = "getGroup"
    )]
    async fn get(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        /// The group's JID, with or without `@g.us`.
        group_id: Path<String>,
        /// Bypass the cache.
        refresh: Query<Option<bool>>,
    ) -> Result<Json<GroupResponse>, Errors<{ SIGNED_IN | PHONE | CONFLICT }>> {
        let phone = phone.0.0;
        let jid = group_jid(&group_id)?;
        let cached = state
            .gateway
            .phone(&phone)?
            .group(jid, refresh.0.unwrap_or(false))
            .await?;
        let group = &cached.value;
        Ok(Json(GroupResponse {
            data: GroupDetail {
                summary: GroupSummary::from(group.as_ref()),
                participants: group
                    .participants
                    .iter()
                    .map(|p| ParticipantView {
                        jid: p.jid.to_string(),
                        admin: p.admin,
                        super_admin: p.super_admin,
                    })
                    .collect(),
            },
            cached: cached.from_cache,
            cached_at: cached.filled_at,
        }))
    }
}

fn group_jid(id: &str) -> Result<Jid, ApiError> {
    let id = id.trim();
    let full = if id.contains('@') {
        id.to_owned()
    } else {
        format!("{id}@{GROUP_SERVER}")
    };
    full.parse::<Jid>()
        .ok()
        .filter(Jid::is_group)
        .ok_or_else(|| ApiError::bad_request("invalid_group_id", format!("`{id}` is not a group id (…@g.us)")))
}
