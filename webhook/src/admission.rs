//! `admission.k8s.io/v1` AdmissionReview: what the API server sends and what
//! it expects back (k8s.io/api/admission/v1/types.go).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// The review as sent, the objects left unparsed: their size is known
/// before any tree is built for them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn<'a> {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(borrow)]
    request: Option<RequestIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn<'a> {
    uid: String,
    kind: GroupVersionKind,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    operation: String,
    #[serde(default)]
    user_info: Option<UserInfo>,
    #[serde(default, borrow)]
    object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    old_object: Option<&'a RawValue>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

impl GroupVersionKind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    #[serde(default)]
    pub username: String,
}

/// The request part of a review. Fields this webhook does not read are ignored.
#[derive(Clone, Debug)]
pub struct Request {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub sub_resource: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub operation: String,
    pub user_info: Option<UserInfo>,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
    pub dry_run: Option<bool>,
}

impl Request {
    pub fn is_dry_run(&self) -> bool {
        self.dry_run == Some(true)
    }

    /// Everything but the objects (cheap: they may be megabytes).
    pub fn without_objects(&self) -> Request {
        Request {
            uid: self.uid.clone(),
            kind: self.kind.clone(),
            sub_resource: self.sub_resource.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            operation: self.operation.clone(),
            user_info: self.user_info.clone(),
            object: None,
            old_object: None,
            dry_run: self.dry_run,
        }
    }
}

/// Why a body is not an AdmissionReview this webhook can answer (a 400).
#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What [`decode_within`] made of a body.
#[derive(Debug)]
pub enum Decoded {
    Review(Request),
    /// The object's JSON is over the limit: the request without its objects,
    /// and the object's size.
    TooBig {
        request: Request,
        bytes: usize,
    },
}

/// Decodes and checks a review body.
pub fn decode(body: &[u8]) -> Result<Request, DecodeError> {
    match decode_within(body, usize::MAX)? {
        Decoded::Review(r) | Decoded::TooBig { request: r, .. } => Ok(r),
    }
}

/// Decodes and checks a review body; an object (new or old) of more than
/// `max_object_bytes` of JSON is not parsed into a tree.
pub fn decode_within(body: &[u8], max_object_bytes: usize) -> Result<Decoded, DecodeError> {
    let review: ReviewIn =
        serde_json::from_slice(body).map_err(|e| DecodeError(format!("the body is not an AdmissionReview: {e}")))?;
    match review.api_version.as_deref() {
        Some(API_VERSION) => {}
        Some(other) => {
            return Err(DecodeError(format!(
                "apiVersion `{other}` is not served: only {API_VERSION} (set admissionReviewVersions: [v1])"
            )));
        }
        None => return Err(DecodeError("the AdmissionReview has no apiVersion".into())),
    }
    if review.kind.as_deref() != Some(KIND) {
        return Err(DecodeError(format!("kind must be {KIND}, not {:?}", review.kind.unwrap_or_default())));
    }
    let r = review.request.ok_or_else(|| DecodeError("the AdmissionReview has no request".into()))?;
    if r.uid.is_empty() {
        return Err(DecodeError("request.uid is empty".into()));
    }
    if !matches!(r.operation.as_str(), "CREATE" | "UPDATE" | "DELETE" | "CONNECT") {
        return Err(DecodeError(format!("request.operation `{}` is not an admission operation", r.operation)));
    }
    for (field, value) in [("object", &r.object), ("oldObject", &r.old_object)] {
        if let Some(raw) = value {
            let kind = raw_type(raw);
            if kind != "an object" && kind != "null" {
                return Err(DecodeError(format!("request.{field} must be an object, not {kind}")));
            }
        }
    }
    let bytes = [r.object, r.old_object].iter().flatten().map(|raw| raw.get().len()).max().unwrap_or(0);
    let mut request = Request {
        uid: r.uid,
        kind: r.kind,
        sub_resource: r.sub_resource,
        name: r.name,
        namespace: r.namespace,
        operation: r.operation,
        user_info: r.user_info,
        object: None,
        old_object: None,
        dry_run: r.dry_run,
    };
    if bytes > max_object_bytes {
        return Ok(Decoded::TooBig { request, bytes });
    }
    let parse = |raw: Option<&RawValue>| -> Result<Option<Value>, DecodeError> {
        match raw {
            None => Ok(None),
            Some(raw) => serde_json::from_str::<Value>(raw.get())
                .map(|v| (!v.is_null()).then_some(v))
                .map_err(|e| DecodeError(format!("the body is not an AdmissionReview: {e}"))),
        }
    };
    request.object = parse(r.object)?;
    request.old_object = parse(r.old_object)?;
    Ok(Decoded::Review(request))
}

/// The `uid` of a review, read from the start of the body without parsing
/// it: the API server writes `request.uid` first (Go encodes struct fields
/// in order, and `UID` is `AdmissionRequest`'s first). For answering a large
/// review that could not be decoded before its deadline; `None` when the
/// body does not start that way.
pub fn peek_uid(body: &[u8]) -> Option<String> {
    const MARK: &[u8] = br#""request":{"uid":""#;
    let head = &body[..body.len().min(1024)];
    let at = head.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let rest = &body[at..body.len().min(at + 256)];
    let end = rest.iter().position(|&b| b == b'"')?;
    let uid = std::str::from_utf8(&rest[..end]).ok()?;
    (!uid.is_empty() && !uid.contains('\\')).then(|| uid.to_string())
}

/// The JSON type of an unparsed value, from its first byte.
fn raw_type(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: &'a Response,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

/// The answer: same `uid`, allowed or not, warnings shown to the client.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Recorded in the API server's audit log (keys are prefixed with the webhook's name).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
}

impl Response {
    pub fn allow(uid: &str) -> Response {
        Response {
            uid: uid.to_string(),
            allowed: true,
            status: None,
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
        }
    }

    pub fn deny(uid: &str, message: String) -> Response {
        Response {
            allowed: false,
            status: Some(Status { code: 403, reason: "Forbidden".into(), message }),
            ..Response::allow(uid)
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let out = ReviewOut { api_version: API_VERSION, kind: KIND, response: self };
        serde_json::to_vec(&out).unwrap_or_else(|_| b"{}".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(request: &str) -> String {
        format!(r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#)
    }

    #[test]
    fn a_review_as_the_api_server_sends_it_decodes() {
        let r = decode(
            body(r#"{"uid":"705ab4f5","kind":{"group":"apps","version":"v1","kind":"DaemonSet"},
                   "resource":{"group":"apps","version":"v1","resource":"daemonsets"},"requestKind":{"group":"apps","version":"v1","kind":"DaemonSet"},
                   "name":"agent","namespace":"monitoring","operation":"CREATE","userInfo":{"username":"admin","groups":["system:masters"]},
                   "object":{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent"}},"oldObject":null,"dryRun":true,
                   "options":{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions"}}"#)
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(r.uid, "705ab4f5");
        assert_eq!(r.kind.api_version(), "apps/v1");
        assert!(r.is_dry_run());
        assert!(r.old_object.is_none(), "null is no old object");
    }

    #[test]
    fn malformed_reviews_say_what_is_wrong() {
        let err = |b: &str| decode(b.as_bytes()).unwrap_err().0;
        assert!(err("not json").contains("not an AdmissionReview"));
        assert!(err(r#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#).contains("v1beta1"));
        assert!(err(r#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#).contains("kind must be"));
        assert!(err(r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#).contains("no request"));
        assert!(err(&body(r#"{"uid":"","kind":{},"operation":"CREATE"}"#)).contains("uid is empty"));
        assert!(err(&body(r#"{"uid":"u","kind":{},"operation":"PATCH"}"#)).contains("PATCH"));
        assert!(err(&body(r#"{"uid":"u","kind":{},"operation":"CREATE","object":[1]}"#)).contains("an array"));
        assert!(err(&body(r#"{"kind":{},"operation":"CREATE"}"#)).contains("uid"));
    }

    #[test]
    fn the_uid_is_read_from_the_start_of_a_body_as_the_api_server_writes_it() {
        let body = br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"705ab4f5-6393","kind":{}}}"#;
        assert_eq!(peek_uid(body), Some("705ab4f5-6393".into()));
        assert_eq!(peek_uid(br#"{"request":{"kind":{},"uid":"x"}}"#), None, "not first: parse it");
        assert_eq!(peek_uid(br#"{"request":{"uid":"a\"b"}}"#), None);
    }

    #[test]
    fn responses_carry_the_uid_and_skip_empty_fields() {
        let allow = String::from_utf8(Response::allow("u1").encode()).unwrap();
        assert_eq!(
            allow,
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u1","allowed":true}}"#
        );
        let deny = String::from_utf8(Response::deny("u2", "no".into()).encode()).unwrap();
        assert!(deny.contains(r#""status":{"code":403,"reason":"Forbidden","message":"no"}"#), "{deny}");
    }
}
