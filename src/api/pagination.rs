//! Page-number pagination shared by list operations.

use poem_openapi::Object;

use super::error::ApiError;

/// Where a page sits among all pages.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Pagination {
    /// This page, from 1.
    page: u64,
    /// Items per page (after capping).
    limit: u64,
    /// Items in all pages.
    total: u64,
    /// Number of pages (0 when there are no items).
    total_pages: u64,
}

impl Pagination {
    pub fn new(page: u64, limit: u64, total: u64) -> Self {
        Self {
            page,
            limit,
            total,
            total_pages: total.div_ceil(limit.max(1)),
        }
    }
}

/// Validates `page` and `limit`: page from 1, limit from 1, limit capped at `max`.
pub fn page_params(
    page: Option<u64>,
    limit: Option<u64>,
    default_limit: u64,
    max: u64,
) -> Result<(u64, u64), ApiError> {
    let page = page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::bad_request("invalid_page", "`page` starts at 1"));
    }
    let limit = limit.unwrap_or(default_limit);
    if limit == 0 {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("`limit` must be between 1 and {max}"),
        ));
    }
    Ok((page, limit.min(max)))
}
