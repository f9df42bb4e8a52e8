//! The API's routes as the spec lists them, to find which operation a request is for
//! before its handler runs: the auth check needs its scope, a 405 needs the methods the
//! path does accept.

use std::sync::OnceLock;

use poem::http::Method;

pub struct Route {
    segments: Vec<String>,
    pub method: Method,
    pub operation_id: String,
}

impl Route {
    /// The path segment that names one of the gateway's phones, if the route has one.
    pub fn phone_segment<'p>(&self, path: &'p str) -> Option<&'p str> {
        // The sandbox's accounts are simulated people, not the gateway's phones.
        if self.operation_id == "sandboxAccountMessages" {
            return None;
        }
        let index = self.segments.iter().position(|s| s == "{phone}")?;
        path.split('/').nth(index)
    }

    fn matches(&self, parts: &[&str]) -> bool {
        self.segments.len() == parts.len()
            && self
                .segments
                .iter()
                .zip(parts)
                .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
    }
}

fn table() -> &'static [Route] {
    static TABLE: OnceLock<Vec<Route>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let spec: serde_json::Value = serde_json::from_str(&super::service().spec()).unwrap_or_default();
        let mut routes = Vec::new();
        for (template, item) in spec["paths"].as_object().into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                    continue;
                };
                routes.push(Route {
                    segments: template.split('/').map(str::to_owned).collect(),
                    method,
                    operation_id: operation["operationId"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        routes
    })
}

/// The operation `method path` is for.
pub fn find(method: &Method, path: &str) -> Option<&'static Route> {
    let parts: Vec<&str> = path.split('/').collect();
    table().iter().find(|r| r.method == *method && r.matches(&parts))
}

/// The methods the spec lists for `path`, as an `Allow` header value.
pub fn allowed_methods(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    let methods: Vec<&str> = table()
        .iter()
        .filter(|r| r.matches(&parts))
        .map(|r| r.method.as_str())
        .collect();
    (!methods.is_empty()).then(|| methods.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_find_their_operation_and_phone() {
        let path = "/api/v1/user/phones/%2B12015550101/message";
        let route = find(&Method::POST, path).unwrap();
        assert_eq!(route.operation_id, "sendMessage");
        assert_eq!(route.phone_segment(path), Some("%2B12015550101"));
        assert_eq!(
            find(&Method::GET, "/api/v1/user/phones").unwrap().operation_id,
            "listPhones"
        );
        assert!(find(&Method::GET, path).is_none());
        let account = "/api/v1/sandbox/accounts/+12015550150/messages";
        assert_eq!(find(&Method::GET, account).unwrap().phone_segment(account), None);
        assert_eq!(allowed_methods("/api/v1/user/phones").as_deref(), Some("GET, POST"));
    }
}
