//! Fuzzes the path of an HTTP answer through the operator: status, headers (`Retry-After`,
//! `Content-Type`, anything else) and body bytes go through the same extraction as
//! `HttpClient::send` (src/api/mod.rs) into `classify::classify` and
//! `api::classify_answer`, and the requeue delay is computed by `Backoff::delay` as the
//! controller does.
//!
//! It checks invariants, not only "no panic":
//! - success (`Ok`) if and only if the status is 2xx *and* the body is a success envelope
//!   (v1: code 200; v2: code 0, or code 200 with `data` and no message); `Ok` carries `data`;
//! - a non-2xx answer (5xx included) is never "done"; a 5xx without an envelope, or with a
//!   success envelope, is Transient;
//! - without an envelope, or with a success envelope behind an error status, nothing is "gone"
//!   (NotFound, NotFoundOrForbidden, InvalidName): the operator must never drop a finalizer on
//!   a proxy's page;
//! - the error keeps the status, the envelope code and the `Retry-After` unchanged, and quotes a
//!   non-envelope body only as a bounded excerpt;
//! - classification is deterministic;
//! - the credential never reaches the message: the request's token (fuzzed: `user:password`
//!   with passwords of any length, API keys, short passwords that are common substrings) is
//!   echoed into the body — the whole token, `Bearer <token>`, the password alone, each also
//!   JSON-escaped, at fuzzed places — and the answer goes through
//!   `zilliz_operator::api::classify_answer`, the path `HttpClient` takes (redact the raw body,
//!   classify, redact the message). The message then holds no form of the secret, or is exactly
//!   `WITHHELD_MESSAGE`; redaction never turns an answer into success or "gone"; and with no
//!   echo in the body, the result is exactly `classify`'s;
//! - `Retry-After` seconds are read exactly, an HTTP date gives at most its distance from now,
//!   and the delay the controller waits is never longer than `MAX_RETRY_AFTER` (1 h) or the
//!   backoff cap, whatever the header says.
//!
//! Input layout (so that seeds can be written by hand: fuzz/make-seeds.py): the
//! fixed-size fields come first and the body takes the rest of the input.

#![no_main]

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use std::time::Duration;
use zilliz_operator::{
    api::{
        Token, WITHHELD_MESSAGE,
        classify::{ApiError, Envelope, ErrorClass, classify, parse_retry_after},
        classify_answer,
    },
    backoff::{Backoff, MAX_RETRY_AFTER},
};

/// The credential of [`Credential::Fixed`] (`user:password`).
const TOKEN: &str = "root:fuzz-Secret-9f3c1d";

/// Short passwords that are also pieces of ordinary answers (and of the `<redacted>` marker).
const COMMON_SHORT: &[&str] = &[
    "a", "e", "on", "co", "de", "400", "404", "red", "act", "ed>", "Milvus", "code", "\"", "\\",
    ":", " ", "found", "<",
];

#[derive(Arbitrary, Debug)]
struct Answer<'a> {
    v2: bool,
    /// Any status reqwest can hand over (100..=999).
    status: u16,
    content_type: ContentType<'a>,
    retry_after: RetryAfter<'a>,
    extra_header: ExtraHeader<'a>,
    /// Failed attempts so far (backoff exponent).
    attempt: u8,
    /// The credential the request carried.
    credential: Credential<'a>,
    /// Where the server echoes it into the body.
    echoes: Vec<Echo>,
    body: Body<'a>,
}

#[derive(Arbitrary, Debug)]
enum Credential<'a> {
    /// [`TOKEN`] (the seeds use this variant).
    Fixed,
    /// `user:password`, both parts fuzzed (any length).
    UserPassword(&'a str, &'a str),
    /// An API key (no colon).
    ApiKey(&'a str),
    /// `root:` and one of [`COMMON_SHORT`].
    CommonShort(u8),
}

impl Credential<'_> {
    fn token(&self) -> String {
        match self {
            Credential::Fixed => TOKEN.to_string(),
            Credential::UserPassword(u, p) => format!("{u}:{p}"),
            Credential::ApiKey(k) => k.to_string(),
            Credential::CommonShort(i) => {
                format!("root:{}", COMMON_SHORT[*i as usize % COMMON_SHORT.len()])
            }
        }
    }
}

/// One echo of the credential, inserted at `at` (modulo the length) into the raw body, or
/// into the envelope's message.
#[derive(Arbitrary, Debug)]
struct Echo {
    at: u16,
    what: EchoWhat,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum EchoWhat {
    Bearer,
    Token,
    /// The part after `user:` alone.
    Password,
    TokenJsonEscaped,
    PasswordJsonEscaped,
}

/// The forms of the secret that must never show: the whole token (trimmed, as `Token::new`
/// keeps it) and the part after `user:`, each also JSON-escaped.
fn secret_forms(token: &str) -> Vec<String> {
    let token = token.trim();
    let mut forms = vec![token.to_string()];
    if let Some((_, password)) = token.split_once(':') {
        forms.push(password.to_string());
    }
    let escaped: Vec<String> = forms.iter().map(|f| json_escaped(f)).collect();
    forms.extend(escaped);
    forms.retain(|f| !f.is_empty());
    forms
}

fn json_escaped(s: &str) -> String {
    let quoted = serde_json::to_string(s).expect("a string serialises");
    quoted[1..quoted.len() - 1].to_string()
}

fn echo_text(token: &str, what: EchoWhat) -> String {
    let token = token.trim();
    let password = token.split_once(':').map_or(token, |(_, p)| p);
    match what {
        EchoWhat::Bearer => format!("Bearer {token}"),
        EchoWhat::Token => token.to_string(),
        EchoWhat::Password => password.to_string(),
        EchoWhat::TokenJsonEscaped => json_escaped(token),
        EchoWhat::PasswordJsonEscaped => json_escaped(password),
    }
}

/// `text` with the echoes inserted (at char boundaries).
fn with_echoes_str(text: &str, token: &str, echoes: &[Echo]) -> String {
    let mut out = text.to_string();
    for e in echoes {
        let bounds: Vec<usize> = out
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(out.len()))
            .collect();
        let at = bounds[e.at as usize % bounds.len()];
        out.insert_str(at, &echo_text(token, e.what));
    }
    out
}

fn with_echoes_bytes(body: &[u8], token: &str, echoes: &[Echo]) -> Vec<u8> {
    let mut out = body.to_vec();
    for e in echoes {
        let at = e.at as usize % (out.len() + 1);
        let text = echo_text(token, e.what);
        out.splice(at..at, text.bytes());
    }
    out
}

#[derive(Arbitrary, Debug)]
enum ContentType<'a> {
    Json,
    JsonUtf8,
    TextPlain,
    Html,
    Missing,
    Other(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
enum RetryAfter<'a> {
    Absent,
    Seconds(u32),
    /// Absurd values: a misconfigured proxy.
    BigSeconds(u64),
    /// An HTTP date (IMF-fixdate) this many seconds from now (negative: in the past).
    DateFromNow(i32),
    Raw(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
enum ExtraHeader<'a> {
    None,
    /// A gateway echoing the request's credential in a header (headers never reach the
    /// message; the body echoes are [`Echo`]).
    EchoAuthorization,
    WwwAuthenticate(&'a [u8]),
    Any(&'a [u8], &'a [u8]),
}

#[derive(Arbitrary, Debug)]
enum Body<'a> {
    /// Bytes as they came (the seeds use this variant: four zero bytes, then the body).
    Raw(Bytes<'a>),
    /// A JSON envelope built from parts, to reach the code/message/data paths quickly.
    Envelope {
        code: Code,
        data: Data,
        /// `None`: no `message` key; `Some(false)`: a non-string message.
        message_is_string: Option<bool>,
        message: &'a str,
    },
}

/// Body bytes, shown as text by `cargo fuzz fmt` and in crash reports.
#[derive(Arbitrary)]
struct Bytes<'a>(&'a [u8]);

impl std::fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b{:?}", String::from_utf8_lossy(self.0))
    }
}

#[derive(Arbitrary, Debug)]
enum Code {
    Zero,
    TwoHundred,
    /// An entry of the code table in docs/zilliz-api.md.
    Known(u8),
    Any(i64),
    /// Not an integer: a float, a string, a u64 above i64::MAX, null.
    Float(f64),
    Text,
    Huge,
    Null,
}

#[derive(Arbitrary, Debug)]
enum Data {
    Absent,
    Null,
    Empty,
    Has(bool),
    Array,
    Cluster,
}

const KNOWN_CODES: &[i64] = &[
    0, 1, 2, 4, 8, 12, 100, 103, 106, 200, 700, 800, 1100, 1400, 1401, 1800, 1801, 1802, 1807,
    10001, 21119, 40003, 40021, 65535, 80000, 80001, 80002, 80020, 80021, 80022, 90001, 90102,
    90103, 90104, 96012, 96013, 96014, 96015, 96016, 96018, 96021, 96022, 96025, 96027, 424242,
];

impl Body<'_> {
    fn bytes(&self, token: &str, echoes: &[Echo]) -> Vec<u8> {
        match self {
            Body::Raw(Bytes(b)) => with_echoes_bytes(b, token, echoes),
            Body::Envelope {
                code,
                data,
                message_is_string,
                message,
            } => {
                let mut m = Map::new();
                let code = match code {
                    Code::Zero => Value::from(0),
                    Code::TwoHundred => Value::from(200),
                    Code::Known(i) => Value::from(KNOWN_CODES[*i as usize % KNOWN_CODES.len()]),
                    Code::Any(c) => Value::from(*c),
                    Code::Float(f) => Value::from(*f),
                    Code::Text => Value::from("200"),
                    Code::Huge => Value::from(u64::MAX),
                    Code::Null => Value::Null,
                };
                m.insert("code".into(), code);
                match data {
                    Data::Absent => {}
                    Data::Null => {
                        m.insert("data".into(), Value::Null);
                    }
                    Data::Empty => {
                        m.insert("data".into(), Value::Object(Map::new()));
                    }
                    Data::Has(h) => {
                        m.insert("data".into(), serde_json::json!({"has": h}));
                    }
                    Data::Array => {
                        m.insert("data".into(), serde_json::json!([1, 2]));
                    }
                    Data::Cluster => {
                        m.insert(
                            "data".into(),
                            serde_json::json!({"clusterId": "in01-x", "prompt": "deleted"}),
                        );
                    }
                }
                match message_is_string {
                    None => {}
                    Some(true) => {
                        m.insert(
                            "message".into(),
                            Value::from(with_echoes_str(message, token, echoes)),
                        );
                    }
                    Some(false) => {
                        m.insert("message".into(), Value::from(message.len()));
                    }
                }
                serde_json::to_vec(&Value::Object(m)).expect("a JSON map serialises")
            }
        }
    }
}

/// The headers the server sent, as reqwest would hand them over (invalid names or values
/// cannot arrive, so they are left out).
fn headers(answer: &Answer<'_>) -> (HeaderMap, Option<i64>) {
    let mut h = HeaderMap::new();
    let mut put = |name: HeaderName, value: &[u8]| {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            h.append(name, v);
        }
    };
    match answer.content_type {
        ContentType::Json => put(header::CONTENT_TYPE, b"application/json"),
        ContentType::JsonUtf8 => put(header::CONTENT_TYPE, b"application/json; charset=utf-8"),
        ContentType::TextPlain => put(header::CONTENT_TYPE, b"text/plain; charset=utf-8"),
        ContentType::Html => put(header::CONTENT_TYPE, b"text/html"),
        ContentType::Missing => {}
        ContentType::Other(v) => put(header::CONTENT_TYPE, v),
    }
    match &answer.extra_header {
        ExtraHeader::None => {}
        ExtraHeader::EchoAuthorization => {
            put(header::AUTHORIZATION, format!("Bearer {TOKEN}").as_bytes());
            put(
                HeaderName::from_static("x-echo"),
                format!("token={TOKEN}").as_bytes(),
            );
        }
        ExtraHeader::WwwAuthenticate(v) => put(header::WWW_AUTHENTICATE, v),
        ExtraHeader::Any(name, value) => {
            if let Ok(name) = HeaderName::from_bytes(name) {
                put(name, value);
            }
        }
    }
    let mut date_offset = None;
    match answer.retry_after {
        RetryAfter::Absent => {}
        RetryAfter::Seconds(s) => put(header::RETRY_AFTER, s.to_string().as_bytes()),
        RetryAfter::BigSeconds(s) => put(header::RETRY_AFTER, s.to_string().as_bytes()),
        RetryAfter::DateFromNow(offset) => {
            let when = jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs(offset.into()))
                .expect("±68 years from now is a valid timestamp");
            let text = jiff::fmt::rfc2822::DateTimePrinter::new()
                .timestamp_to_rfc9110_string(&when)
                .expect("a timestamp near now prints");
            put(header::RETRY_AFTER, text.as_bytes());
            date_offset = Some(i64::from(offset));
        }
        RetryAfter::Raw(v) => put(header::RETRY_AFTER, v),
    }
    (h, date_offset)
}

/// What the body says, read independently of `classify`: `Some((code, message, data))` when it
/// is a JSON object with an integer `code`.
fn envelope_of(body: &[u8]) -> Option<(i64, String, Option<Value>)> {
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let code = m.get("code")?.as_i64()?;
    let message = m
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some((code, message, m.get("data").cloned()))
}

fn is_gone(class: ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::NotFound | ErrorClass::NotFoundOrForbidden | ErrorClass::InvalidName
    )
}

/// Longest message for a body without an envelope: the 200-character excerpt, its ellipsis and
/// the 404 explanation in front of it.
const MAX_EXCERPT_MESSAGE: usize = 200 + 1 + 100;

fn check(answer: &Answer<'_>) {
    let status = 100 + answer.status % 900;
    let envelope = if answer.v2 {
        Envelope::V2
    } else {
        Envelope::V1
    };
    let token = answer.credential.token();
    let body = answer.body.bytes(&token, &answer.echoes);
    let (headers, date_offset) = headers(answer);

    // As in HttpClient::send.
    let retry_after = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);

    // Retry-After: read exactly when it is a number, never beyond the date when it is a date.
    match answer.retry_after {
        RetryAfter::Seconds(s) => assert_eq!(retry_after, Some(Duration::from_secs(s.into()))),
        RetryAfter::BigSeconds(s) => assert_eq!(retry_after, Some(Duration::from_secs(s))),
        RetryAfter::DateFromNow(_) => {
            let offset = date_offset.expect("a date was sent");
            let ra = retry_after.expect("an IMF-fixdate Retry-After parses");
            let upper = Duration::from_secs(offset.max(0).unsigned_abs());
            assert!(ra <= upper, "date {offset}s from now gave {ra:?}");
            // the date has whole seconds, and a little time passes while testing
            assert!(
                ra + Duration::from_secs(3) >= upper,
                "date {offset}s from now gave {ra:?}"
            );
        }
        RetryAfter::Absent => assert_eq!(retry_after, None),
        RetryAfter::Raw(_) => {}
    }
    // The controller waits Backoff::delay(attempt, retry_after): bounded whatever the header.
    let backoff = Backoff::default();
    let delay = backoff.delay(answer.attempt.into(), retry_after);
    assert!(
        delay <= backoff.cap.max(MAX_RETRY_AFTER),
        "Retry-After {retry_after:?} gave a delay of {delay:?}"
    );
    if let Some(ra) = retry_after {
        assert!(delay >= ra.min(MAX_RETRY_AFTER), "Retry-After is a floor");
    }

    let result = classify(envelope, status, retry_after, &body);
    // Deterministic.
    assert_eq!(result, classify(envelope, status, retry_after, &body));

    let success_status = (200..=299).contains(&status);
    let parsed = envelope_of(&body);
    let success_envelope = parsed
        .as_ref()
        .is_some_and(|(code, message, data)| match envelope {
            Envelope::V1 => *code == 200,
            Envelope::V2 => *code == 0 || (*code == 200 && data.is_some() && message.is_empty()),
        });

    match &result {
        Ok(data) => {
            assert!(success_status, "HTTP {status} read as done");
            assert!(success_envelope, "not a success envelope read as done");
            let expected = parsed.and_then(|(_, _, d)| d).unwrap_or(Value::Null);
            assert_eq!(*data, expected, "Ok must carry the envelope's data");
        }
        Err(e) => {
            assert!(
                !(success_status && success_envelope),
                "HTTP {status} with a success envelope read as {e:?}"
            );
            check_error(
                e,
                status,
                retry_after,
                &body,
                parsed.as_ref(),
                success_envelope,
            );
        }
    }

    check_redaction(&token, envelope, status, retry_after, &body, &result);
}

/// The path `HttpClient` takes with the same answer: the secret never shows in the message,
/// and redaction changes nothing else that matters.
fn check_redaction(
    token: &str,
    envelope: Envelope,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    plain: &Result<Value, ApiError>,
) {
    let redacted = classify_answer(
        &Token::new(token),
        envelope,
        status,
        retry_after,
        body.to_vec(),
    );
    let forms = secret_forms(token);
    if let Err(e) = &redacted
        && e.message != WITHHELD_MESSAGE
    {
        for form in &forms {
            assert!(
                !e.message.contains(form.as_str()),
                "the credential {form:?} leaked: {:?}",
                e.message
            );
        }
    }
    // Redaction never makes an answer "done" or "gone".
    match (&redacted, plain) {
        (Ok(_), Ok(_)) => {}
        (Ok(_), Err(e)) => panic!("redaction turned {e:?} into success"),
        (Err(r), Ok(_)) => assert!(!is_gone(r.class), "success redacted into {r:?}"),
        (Err(r), Err(p)) => {
            assert!(
                !is_gone(r.class) || r.class == p.class,
                "{p:?} redacted into {r:?}"
            );
            assert_eq!(r.http_status, p.http_status);
            assert_eq!(r.retry_after, p.retry_after);
        }
    }
    // Nothing to redact: exactly what classify says.
    let echoed = forms
        .iter()
        .any(|f| contains(body, f.as_bytes()) || contains(body, json_escaped(f).as_bytes()));
    let in_message = plain
        .as_ref()
        .err()
        .is_some_and(|e| forms.iter().any(|f| e.message.contains(f.as_str())));
    if !echoed && !in_message {
        assert_eq!(
            &redacted, plain,
            "redaction changed an answer without the credential"
        );
    }
}

fn check_error(
    e: &ApiError,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    parsed: Option<&(i64, String, Option<Value>)>,
    success_envelope: bool,
) {
    assert_eq!(e.http_status, Some(status));
    assert_eq!(e.retry_after, retry_after);
    assert_eq!(e.code, parsed.map(|(c, _, _)| *c));
    assert!(e.to_string().starts_with(&format!("HTTP {status}")), "{e}");
    assert!(!e.class.as_str().is_empty());
    match parsed {
        None => {
            // Only the status speaks: never "gone", never "needs release".
            assert!(!is_gone(e.class), "no envelope, HTTP {status}: {e:?}");
            assert_ne!(e.class, ErrorClass::NeedsRelease);
            if (200..=299).contains(&status) {
                assert_eq!(e.class, ErrorClass::Unknown);
            }
            if (500..=599).contains(&status) {
                assert_eq!(e.class, ErrorClass::Transient);
            }
            if status == 401 || status == 403 {
                assert_eq!(e.class, ErrorClass::Credentials);
            }
            let n = e.message.chars().count();
            assert!(n <= MAX_EXCERPT_MESSAGE, "message of {n} characters");
            if body.is_empty() && status != 404 {
                assert_eq!(e.message, "empty body");
            }
        }
        Some((_, message, _)) => {
            if success_envelope {
                // A success envelope behind an error status: a proxy answering for the server.
                assert!(!is_gone(e.class), "HTTP {status} + success envelope: {e:?}");
                if (500..=599).contains(&status) {
                    assert_eq!(e.class, ErrorClass::Transient);
                }
            }
            if message.is_empty() {
                let n = e.message.chars().count();
                assert!(n <= MAX_EXCERPT_MESSAGE, "message of {n} characters");
            } else {
                assert_eq!(&e.message, message, "the server's message is kept as is");
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|answer: Answer<'_>| {
    check(&answer);
});
