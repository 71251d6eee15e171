//! Turning a raw HTTP answer from Zilliz Cloud or Milvus into a result.
//!
//! The envelope is the truth, not the HTTP status: nearly every answer is HTTP 200 with
//! `{"code": N, ...}`. So the order is the envelope `code` first, the HTTP status second and the
//! message text last (see `docs/zilliz-api.md`). Everything here is pure so that it can be
//! tested with the real bodies.

use std::time::Duration;

/// Which envelope convention an endpoint follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// REST v1 (data plane v1, control plane v1): success is `code` 200.
    V1,
    /// REST v2 (data plane v2, control plane v2): success is `code` 0; early builds answered 200
    /// with `data`, and 200 with a `message` and no `data` is an error.
    V2,
}

/// What a failed answer means for the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The resource does not exist (collection/partition/index/database not found).
    NotFound,
    /// Zilliz's "does not exist or you don't have permission" (80020): must be confirmed.
    NotFoundOrForbidden,
    /// The API says the name is invalid, so no such resource can exist.
    InvalidName,
    /// The partition or collection is loaded and must be released first.
    NeedsRelease,
    /// Worth retrying with backoff: timeouts, throttling, 5xx, connection errors.
    Transient,
    /// The credentials are wrong or lack permission; retrying will not help until they change.
    Credentials,
    /// The operation is not supported for this resource (serverless, default partition, ...).
    Unsupported,
    /// The request is wrong (wrong path or method, wrong API version, missing parameter).
    BadRequest,
    /// Nothing known: retried like a transient error, with the body kept for the user.
    Unknown,
}

impl ErrorClass {
    /// Whether retrying without a change of spec or Secret can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::Transient | ErrorClass::Unknown | ErrorClass::NeedsRelease
        )
    }

    /// A stable, bounded name: used as condition reason suffix and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::NotFound => "NotFound",
            ErrorClass::NotFoundOrForbidden => "NotFoundOrForbidden",
            ErrorClass::InvalidName => "InvalidName",
            ErrorClass::NeedsRelease => "NeedsRelease",
            ErrorClass::Transient => "Transient",
            ErrorClass::Credentials => "Credentials",
            ErrorClass::Unsupported => "Unsupported",
            ErrorClass::BadRequest => "BadRequest",
            ErrorClass::Unknown => "Unknown",
        }
    }
}

/// A failed call, classified.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ApiError {
    pub class: ErrorClass,
    /// HTTP status, when an answer arrived.
    pub http_status: Option<u16>,
    /// Envelope code, when the body had one.
    pub code: Option<i64>,
    /// The server's message (or a short excerpt of a non-JSON body), never a request header.
    pub message: String,
    /// `Retry-After` from the answer, if any.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        ApiError {
            class,
            http_status: None,
            code: None,
            message: message.into(),
            retry_after: None,
        }
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(st) = self.http_status {
            s.push_str(&format!("HTTP {st}"));
        }
        if let Some(c) = self.code {
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str(&format!("code {c}"));
        }
        if !s.is_empty() {
            s.push_str(": ");
        }
        s.push_str(&self.message);
        s
    }
}

/// Longest excerpt of a body that is kept in an error message.
const EXCERPT: usize = 200;

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut out: String = text.chars().take(EXCERPT).collect();
    if text.chars().count() > EXCERPT {
        out.push('…');
    }
    out
}

/// Classify an answer. `Ok` carries the envelope's `data` (or `null`).
pub fn classify(
    envelope: Envelope,
    http_status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<serde_json::Value, ApiError> {
    let parsed: Option<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| match v {
                serde_json::Value::Object(m) => Some(m),
                _ => None,
            });
    let fail = |class: ErrorClass, code: Option<i64>, message: String| ApiError {
        class,
        http_status: Some(http_status),
        code,
        message,
        retry_after,
    };

    let Some(obj) = parsed.filter(|m| m.get("code").is_some_and(|c| c.is_i64())) else {
        // No envelope: the HTTP status is all there is.
        let class = match http_status {
            200..=299 => ErrorClass::Unknown, // a malformed body on success: never assume done
            _ => class_of_http_status(http_status),
        };
        let message = if http_status == 404 && class == ErrorClass::BadRequest {
            format!(
                "the server has no such endpoint (wrong path, method or API version?): {}",
                excerpt(body)
            )
        } else if body.is_empty() {
            "empty body".to_string()
        } else {
            excerpt(body)
        };
        return Err(fail(class, None, message));
    };

    let code = obj.get("code").and_then(|c| c.as_i64()).unwrap_or_default();
    let message = obj
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_string();
    let data = obj.get("data").cloned();

    let success_code = match envelope {
        Envelope::V1 => code == 200,
        // 200 with data is success on early v2 builds; 200 with a message and no data is an error.
        Envelope::V2 => code == 0 || (code == 200 && data.is_some() && message.is_empty()),
    };
    let success_status = (200..=299).contains(&http_status);
    if success_code && success_status {
        return Ok(data.unwrap_or(serde_json::Value::Null));
    }

    let class = if success_code {
        // A success envelope behind an error status (a proxy or gateway answering for the
        // server): never "done", and never read code 200 as "partition not found".
        class_of_http_status(http_status)
    } else {
        class_of_code(code)
            .or_else(|| class_of_message(&message))
            .unwrap_or_else(|| match http_status {
                200..=299 => ErrorClass::Unknown,
                _ => class_of_http_status(http_status),
            })
    };
    let message = if message.is_empty() {
        excerpt(body)
    } else {
        message
    };
    Err(fail(class, Some(code), message))
}

/// Zilliz's refusal of a cluster create whose name the project already uses
/// (`{"code":80010,"message":"Duplicated ClusterName. ..."}`, `docs/zilliz-api.md`, "Creating and
/// describing").
pub const DUPLICATE_CLUSTER_NAME: i64 = 80010;

/// Whether a failed cluster create was refused because the name is taken: the API answered
/// itself (an envelope with code 80010), so this create made nothing, and a cluster of that
/// name exists (it may be the one an earlier, lost answer created).
pub fn is_duplicate_cluster_name(e: &ApiError) -> bool {
    e.code == Some(DUPLICATE_CLUSTER_NAME)
}

/// The envelope code table of `docs/zilliz-api.md`. `None` when the code alone does not say.
fn class_of_code(code: i64) -> Option<ErrorClass> {
    use ErrorClass::*;
    Some(match code {
        // Milvus merr: collection (100), index (700), database (800). (v2's "200 with a
        // message" is classified by its message: only "... not found" counts as gone.)
        100 | 700 | 800 => NotFound,
        // Zilliz: cluster/collection does not exist.
        90102 | 96018 | 40021 | 90001 => NotFound,
        80020 => NotFoundOrForbidden,
        1100 => InvalidName,
        1 | 2 | 4 | 8 | 12 | 103 | 106 | 1807 | 10001 | 40003 => Transient,
        1800 | 1400 | 1401 | 80001 | 80002 | 21119 | 96012..=96016 | 96027 => Credentials,
        80021 | 80022 | 96021 | 96022 => Unsupported,
        // 105: illegal schema (a create)
        105 | 1801 | 1802 | 80000 | 90103 | 90104 | 96025 => BadRequest,
        // Zilliz: a cluster of that name already exists in the project; nothing was created
        // (see `is_duplicate_cluster_name`)
        DUPLICATE_CLUSTER_NAME => BadRequest,
        // 65535 is Milvus' catch-all: the message says what it is.
        _ => return None,
    })
}

fn class_of_message(message: &str) -> Option<ErrorClass> {
    let m = message.to_ascii_lowercase();
    if m.contains("release it first") || m.contains("is loaded") {
        Some(ErrorClass::NeedsRelease)
    } else if m.contains("with different parameters") || m.contains("at most one distinct index") {
        // a create whose name is taken by a different definition (docs/zilliz-api.md)
        Some(ErrorClass::BadRequest)
    } else if m.contains("default partition cannot be deleted") {
        Some(ErrorClass::Unsupported)
    } else if m.contains("permissiondenied") || m.contains("permission denied") {
        Some(ErrorClass::Credentials)
    } else if ["collection", "partition", "index", "database"]
        .iter()
        .any(|what| m.contains(&format!("{what} not found")))
    {
        Some(ErrorClass::NotFound)
    } else {
        None
    }
}

fn class_of_http_status(status: u16) -> ErrorClass {
    match status {
        401 | 403 => ErrorClass::Credentials,
        // A 404 without an envelope is a wrong path or method, never "resource gone".
        404 | 405 | 400 | 413 | 414 | 415 | 422 => ErrorClass::BadRequest,
        408 | 425 | 429 | 500..=599 => ErrorClass::Transient,
        _ => ErrorClass::Unknown,
    }
}

/// Parse a `Retry-After` header: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let delta = when.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorClass::*;

    fn class(env: Envelope, status: u16, body: &str) -> Result<serde_json::Value, ErrorClass> {
        classify(env, status, None, body.as_bytes()).map_err(|e| e.class)
    }

    #[test]
    fn a_create_refused_for_its_definition_is_a_bad_request() {
        for body in [
            r#"{"code":65535,"message":"create duplicate collection with different parameters, collection: articles"}"#,
            r#"{"code":65535,"message":"at most one distinct index is allowed per field"}"#,
            r#"{"code":105,"message":"illegal schema"}"#,
        ] {
            assert_eq!(class(Envelope::V2, 200, body), Err(BadRequest), "{body}");
        }
    }

    #[test]
    fn real_milvus_v1_answers() {
        assert!(class(Envelope::V1, 200, r#"{"code":200,"data":{}}"#).is_ok());
        assert_eq!(
            class(
                Envelope::V1,
                200,
                r#"{"code":100,"message":"collection not found, database: default, collection: nope"}"#
            ),
            Err(NotFound)
        );
        assert_eq!(
            class(
                Envelope::V1,
                200,
                r#"{"code":1802,"message":"missing required parameters, error: Key: 'DropCollectionReq.CollectionName' Error:Field validation for 'CollectionName' failed on the 'required' tag"}"#
            ),
            Err(BadRequest)
        );
        assert_eq!(
            class(
                Envelope::V1,
                200,
                r#"{"code":1100,"message":"Invalid collection name: bad name!. collection name can only contain numbers, letters and underscores: invalid parameter"}"#
            ),
            Err(InvalidName)
        );
        assert_eq!(
            class(
                Envelope::V1,
                200,
                r#"{"code":1801,"message":"can only accept json format request"}"#
            ),
            Err(BadRequest)
        );
        assert_eq!(
            class(
                Envelope::V1,
                200,
                r#"{"code":800,"message":"database not found, database: nodb"}"#
            ),
            Err(NotFound)
        );
        assert_eq!(
            class(
                Envelope::V1,
                401,
                r#"{"code":1800,"message":"user hasn't authenticated"}"#
            ),
            Err(Credentials)
        );
    }

    #[test]
    fn v1_success_is_200_only() {
        // A v1 server never answers 0 for success; an unexpected code is not "done".
        assert_eq!(
            class(Envelope::V1, 200, r#"{"code":0,"data":{}}"#),
            Err(Unknown)
        );
    }

    #[test]
    fn v2_answers() {
        assert!(class(Envelope::V2, 200, r#"{"code":0,"data":{}}"#).is_ok());
        // early v2 builds: 200 with data is success
        assert_eq!(
            class(Envelope::V2, 200, r#"{"code":200,"data":{"has":true}}"#),
            Ok(serde_json::json!({"has": true}))
        );
        // 200 with a message and no data is an error
        assert_eq!(
            class(
                Envelope::V2,
                200,
                r#"{"code":200,"message":"partition not found[partition=p]"}"#
            ),
            Err(NotFound)
        );
        assert_eq!(
            class(
                Envelope::V2,
                200,
                r#"{"code":65535,"message":"partition cannot be dropped, partition is loaded, please release it first"}"#
            ),
            Err(NeedsRelease)
        );
        assert_eq!(
            class(
                Envelope::V2,
                200,
                r#"{"code":65535,"message":"index cannot be dropped, collection is loaded, please release it first"}"#
            ),
            Err(NeedsRelease)
        );
        assert_eq!(
            class(
                Envelope::V2,
                200,
                r#"{"code":65535,"message":"default partition cannot be deleted"}"#
            ),
            Err(Unsupported)
        );
        assert_eq!(
            class(
                Envelope::V2,
                200,
                r#"{"code":100,"message":"collection not found[database=default][collection=x]"}"#
            ),
            Err(NotFound)
        );
        assert_eq!(
            class(
                Envelope::V2,
                200,
                r#"{"code":700,"message":"index not found"}"#
            ),
            Err(NotFound)
        );
        assert_eq!(
            class(
                Envelope::V2,
                403,
                r#"{"code":65535,"message":"PermissionDenied: not allowed to DropCollection"}"#
            ),
            Err(Credentials)
        );
        assert_eq!(
            class(
                Envelope::V2,
                408,
                r#"{"code":10001,"message":"request timeout"}"#
            ),
            Err(Transient)
        );
    }

    #[test]
    fn zilliz_control_plane_codes() {
        let cases = [
            (80001, Credentials),
            (80002, Credentials),
            (21119, Credentials),
            (96013, Credentials),
            (80020, NotFoundOrForbidden),
            (80021, Unsupported),
            (90102, NotFound),
            (90103, BadRequest),
            (40003, Transient),
        ];
        for (code, expected) in cases {
            let body = format!(r#"{{"code":{code},"message":"m"}}"#);
            assert_eq!(
                class(Envelope::V2, 200, &body),
                Err(expected),
                "code {code}"
            );
            assert_eq!(
                class(Envelope::V1, 200, &body),
                Err(expected),
                "code {code}"
            );
        }
        assert!(
            class(
                Envelope::V2,
                200,
                r#"{"code":0,"data":{"clusterId":"inxx-x","prompt":"The cluster has been deleted."}}"#
            )
            .is_ok()
        );
        assert!(
            class(
                Envelope::V1,
                200,
                r#"{"code":200,"data":{"clusterId":"in01-x","prompt":"The Cluster has been deleted."}}"#
            )
            .is_ok()
        );
        assert_eq!(
            class(
                Envelope::V2,
                401,
                r#"{"code":21119,"message":"The apikey is illegal"}"#
            ),
            Err(Credentials)
        );
    }

    #[test]
    fn a_duplicate_cluster_name_is_a_refusal_that_names_itself() {
        let body = r#"{"code":80010,"message":"Duplicated ClusterName. Please use a different name for your cluster."}"#;
        for env in [Envelope::V1, Envelope::V2] {
            let e = classify(env, 200, None, body.as_bytes()).unwrap_err();
            assert_eq!(e.class, BadRequest);
            assert!(!e.class.is_retryable());
            assert!(is_duplicate_cluster_name(&e), "{e}");
        }
        // other refusals, and a gateway page, are not
        for body in [
            r#"{"code":80000,"message":"Duplicated ClusterName"}"#,
            "<html>504</html>",
        ] {
            let e = classify(Envelope::V2, 504, None, body.as_bytes()).unwrap_err();
            assert!(!is_duplicate_cluster_name(&e), "{e}");
        }
    }

    #[test]
    fn http_status_when_there_is_no_envelope() {
        assert_eq!(
            class(Envelope::V2, 404, "404 page not found"),
            Err(BadRequest)
        );
        assert_eq!(class(Envelope::V2, 401, ""), Err(Credentials));
        assert_eq!(class(Envelope::V2, 403, "Forbidden"), Err(Credentials));
        assert_eq!(class(Envelope::V2, 429, "slow down"), Err(Transient));
        assert_eq!(
            class(
                Envelope::V2,
                502,
                "<html><body><h1>502 Bad Gateway</h1></body></html>"
            ),
            Err(Transient)
        );
        assert_eq!(class(Envelope::V2, 503, ""), Err(Transient));
        // success status with a body that is not an envelope: never "done"
        assert_eq!(class(Envelope::V2, 200, "{not json"), Err(Unknown));
        assert_eq!(class(Envelope::V2, 200, r#"{"data":{}}"#), Err(Unknown));
        assert_eq!(class(Envelope::V2, 200, "[1,2]"), Err(Unknown));
        // an unknown code is retried, with the body kept
        let err = classify(
            Envelope::V2,
            200,
            None,
            br#"{"code":424242,"message":"something new"}"#,
        )
        .unwrap_err();
        assert_eq!(err.class, Unknown);
        assert_eq!(err.message, "something new");
        assert!(err.class.is_retryable());
    }

    #[test]
    fn v2_code_200_with_a_message_is_gone_only_when_the_message_says_not_found() {
        assert_eq!(
            class(
                Envelope::V2,
                200,
                r#"{"code":200,"message":"partition not found[partition=p]"}"#
            ),
            Err(NotFound)
        );
        // anything else behind code 200 is not proof that the resource is gone
        assert_eq!(
            class(
                Envelope::V2,
                200,
                r#"{"code":200,"message":"service temporarily unavailable"}"#
            ),
            Err(Unknown)
        );
    }

    #[test]
    fn a_success_envelope_behind_an_error_status_is_not_done() {
        // a gateway answering for a dead backend must never read as "dropped"
        assert_eq!(
            class(Envelope::V2, 503, r#"{"code":0,"data":{}}"#),
            Err(Transient)
        );
        assert_eq!(
            class(Envelope::V1, 502, r#"{"code":200,"data":{}}"#),
            Err(Transient)
        );
        // and v2 code 200 with data is not "partition not found" there either
        assert_eq!(
            class(Envelope::V2, 401, r#"{"code":200,"data":{}}"#),
            Err(Credentials)
        );
        assert_eq!(
            class(Envelope::V2, 302, r#"{"code":0,"data":{}}"#),
            Err(Unknown)
        );
    }

    #[test]
    fn error_text_is_bounded_and_names_the_404_trap() {
        let big = "x".repeat(10_000);
        let err = classify(Envelope::V2, 502, None, big.as_bytes()).unwrap_err();
        assert!(err.message.chars().count() <= EXCERPT + 1);
        let err = classify(Envelope::V2, 404, None, b"404 page not found").unwrap_err();
        assert!(err.message.contains("API version"), "{}", err.message);
        assert_eq!(err.to_string(), format!("HTTP 404: {}", err.message));
    }

    #[test]
    fn milvus_not_found_codes_say_it_without_the_usual_words() {
        // older Milvus builds word it otherwise; the code alone is enough
        for (code, message) in [
            (100, "can't find collection: books"),
            (700, "index doesn't exist"),
            (800, "database:nodb doesn't exist"),
        ] {
            let body = format!(r#"{{"code":{code},"message":"{message}"}}"#);
            for env in [Envelope::V1, Envelope::V2] {
                assert_eq!(class(env, 200, &body), Err(NotFound), "{code} {env:?}");
            }
        }
    }

    #[test]
    fn either_phrase_of_a_loaded_resource_needs_a_release() {
        for message in [
            "collection is loaded",
            "failed to drop index: please release it first",
        ] {
            let body = format!(r#"{{"code":65535,"message":"{message}"}}"#);
            assert_eq!(
                class(Envelope::V2, 200, &body),
                Err(NeedsRelease),
                "{message}"
            );
        }
    }

    #[test]
    fn permission_denied_behind_http_200_is_credentials() {
        // the HTTP status says nothing here: the message decides
        for message in [
            "PermissionDenied: not allowed",
            "permission denied on collection",
        ] {
            let body = format!(r#"{{"code":65535,"message":"{message}"}}"#);
            assert_eq!(
                class(Envelope::V2, 200, &body),
                Err(Credentials),
                "{message}"
            );
        }
    }

    #[test]
    fn v2_code_200_with_data_and_a_message_is_not_success() {
        assert_eq!(
            class(
                Envelope::V2,
                200,
                r#"{"code":200,"data":{},"message":"collection not found[collection=x]"}"#
            ),
            Err(NotFound)
        );
        assert_eq!(class(Envelope::V2, 200, r#"{"code":200}"#), Err(Unknown));
    }

    #[test]
    fn an_error_says_status_code_and_message() {
        let e = classify(Envelope::V2, 200, None, br#"{"code":80020,"message":"m"}"#).unwrap_err();
        assert_eq!(e.to_string(), "HTTP 200, code 80020: m");
        let e = ApiError {
            code: Some(1100),
            ..ApiError::new(InvalidName, "invalid parameter")
        };
        assert_eq!(e.to_string(), "code 1100: invalid parameter");
        assert_eq!(ApiError::new(Unknown, "plain").to_string(), "plain");
    }

    #[test]
    fn excerpts_are_cut_at_the_limit_and_marked() {
        let message = |body: &str| {
            classify(Envelope::V2, 502, None, body.as_bytes())
                .unwrap_err()
                .message
        };
        let exact = "y".repeat(EXCERPT);
        assert_eq!(message(&exact), exact, "at the limit: whole, unmarked");
        let over = "z".repeat(EXCERPT + 1);
        assert_eq!(message(&over), format!("{}…", "z".repeat(EXCERPT)));
        assert_eq!(message(" Bad Gateway \n"), "Bad Gateway");
    }

    #[test]
    fn only_a_404_without_an_envelope_is_called_a_missing_endpoint() {
        let e = classify(Envelope::V2, 400, None, b"bad request").unwrap_err();
        assert_eq!((e.class, e.message.as_str()), (BadRequest, "bad request"));
        let e = classify(Envelope::V2, 405, None, b"").unwrap_err();
        assert_eq!((e.class, e.message.as_str()), (BadRequest, "empty body"));
    }

    // `delete match arm 200..=299` in `classify` (both places) is equivalent: the arm maps a
    // success status to Unknown, and `class_of_http_status` maps every status it does not list,
    // 2xx included, to Unknown too. `http_status_when_there_is_no_envelope` and
    // `v2_code_200_with_a_message_is_gone_only_when_the_message_says_not_found` pin that
    // outcome.

    #[test]
    fn only_answers_that_may_change_by_themselves_are_retried() {
        let all = [
            NotFound,
            NotFoundOrForbidden,
            InvalidName,
            NeedsRelease,
            Transient,
            Credentials,
            Unsupported,
            BadRequest,
            Unknown,
        ];
        let retried: Vec<ErrorClass> = all.into_iter().filter(|c| c.is_retryable()).collect();
        assert_eq!(retried, vec![NeedsRelease, Transient, Unknown]);
        // the names are the condition reason suffixes and metric labels: stable and distinct
        for c in all {
            assert_eq!(c.as_str(), format!("{c:?}"));
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
        let past = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(past, Some(Duration::ZERO));
    }
}
