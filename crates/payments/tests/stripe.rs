#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Stripe adapter against a local fake of Stripe's API (PaymentIntents with the real
//! request and response shapes, Bearer authentication and Idempotency-Key replay), and its
//! webhook signature checks against deliveries signed the way Stripe signs them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use toll_core::{Currency, Micros};
use toll_payments::stripe::{StripeAdapter, signature_header};
use toll_payments::{
    CreatePayment, EventBody, PaymentProvider, PaymentStatus, ProviderError, WebhookError,
};

const SECRET_KEY: &str = "sk_test_fake";
const WEBHOOK_SECRET: &str = "whsec_test_secret";

/// The first request made with an idempotency key (its sorted form fields) and the answer,
/// which Stripe replays for the same request and refuses for another.
struct Reply {
    params: Vec<(String, String)>,
    status: StatusCode,
    body: Value,
}

/// What the fake keeps: PaymentIntents by id, and each idempotency key's request and answer.
#[derive(Default)]
struct Fake {
    intents: HashMap<String, Value>,
    replies: HashMap<String, Reply>,
    created: u64,
}

type Shared = Arc<Mutex<Fake>>;

fn stripe_error(status: StatusCode, kind: &str, code: Option<&str>, message: &str) -> Response {
    let mut error = json!({ "type": kind, "message": message });
    if let Some(c) = code {
        error["code"] = json!(c);
    }
    (status, Json(json!({ "error": error }))).into_response()
}

fn authorized(headers: &HeaderMap) -> Option<Response> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth == Some(&format!("Bearer {SECRET_KEY}")) {
        None
    } else {
        Some(stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            "Invalid API Key provided: sk_test_****",
        ))
    }
}

async fn create_intent(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Form(mut params): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(denied) = authorized(&headers) {
        return denied;
    }
    params.sort();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut f = fake.lock().unwrap();
    if let Some(k) = &key
        && let Some(reply) = f.replies.get(k)
    {
        if reply.params != params {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "idempotency_error",
                None,
                "Keys for idempotent requests can only be used with the same parameters they \
                 were first used with.",
            );
        }
        let mut r = (reply.status, Json(reply.body.clone())).into_response();
        r.headers_mut()
            .insert("idempotent-replayed", "true".parse().unwrap());
        return r;
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let Some(amount) = get("amount").and_then(|a| a.parse::<i64>().ok()) else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("parameter_invalid_integer"),
            "Invalid integer: amount",
        );
    };
    let currency = get("currency").unwrap_or_default();
    if currency.len() != 3 || currency.to_ascii_lowercase() != currency {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("parameter_invalid_string"),
            "Invalid currency",
        );
    }
    let metadata: BTreeMap<String, String> = params
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[")
                .and_then(|k| k.strip_suffix(']'))
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect();
    f.created += 1;
    let id = format!("pi_3Fake{:06}", f.created);
    let body = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "capture_method": "automatic_async",
        "client_secret": format!("{id}_secret_fake{}", f.created),
        "confirmation_method": "automatic",
        "created": 1_790_000_000 + f.created,
        "currency": currency,
        "description": get("description"),
        "livemode": false,
        "metadata": metadata,
        "payment_method": null,
        "payment_method_types": ["card"],
        "status": "requires_payment_method",
    });
    f.intents.insert(id, body.clone());
    if let Some(k) = key {
        f.replies.insert(
            k,
            Reply {
                params,
                status: StatusCode::OK,
                body: body.clone(),
            },
        );
    }
    (StatusCode::OK, Json(body)).into_response()
}

async fn retrieve_intent(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(denied) = authorized(&headers) {
        return denied;
    }
    match fake.lock().unwrap().intents.get(&id) {
        Some(pi) => (StatusCode::OK, Json(pi.clone())).into_response(),
        None => stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("resource_missing"),
            &format!("No such payment_intent: '{id}'"),
        ),
    }
}

/// Serves the fake on 127.0.0.1, on a port the system picks; returns its URL and state.
async fn fake_stripe() -> (String, Shared) {
    let state: Shared = Arc::default();
    let app = Router::new()
        .route("/v1/payment_intents", post(create_intent))
        .route("/v1/payment_intents/{id}", get(retrieve_intent))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), state)
}

fn adapter(base: &str) -> StripeAdapter {
    StripeAdapter::new(base, SECRET_KEY, WEBHOOK_SECRET).unwrap()
}

fn request(key: &str, amount: &str) -> CreatePayment {
    CreatePayment {
        tenant: "acme".into(),
        account: "a1".into(),
        key: key.into(),
        amount: amount.parse().unwrap(),
        currency: Currency::CNY,
        description: Some("话费充值 top-up".into()),
    }
}

#[tokio::test]
async fn payment_intents_are_created_once_per_key_and_read_back() {
    let (base, fake) = fake_stripe().await;
    let stripe = adapter(&base);
    let p = stripe
        .create_payment(&request("topup-1", "12.34"))
        .await
        .unwrap();
    assert!(p.id.starts_with("pi_"), "{p:?}");
    assert_eq!(p.status, PaymentStatus::RequiresPaymentMethod);
    assert_eq!(p.amount, "12.34".parse::<Micros>().unwrap());
    assert_eq!(p.amount_received, Micros(0));
    assert_eq!(p.currency, Currency::CNY);
    assert!(p.client_secret.as_deref().unwrap().starts_with(&p.id));
    let toll = p.toll.clone().unwrap();
    assert_eq!(
        (
            toll.tenant.as_str(),
            toll.account.as_str(),
            toll.key.as_str()
        ),
        ("acme", "a1", "topup-1")
    );
    // What went over the wire: minor units, lower-case currency, the metadata.
    {
        let f = fake.lock().unwrap();
        let sent = &f.replies["topup-1"].params;
        let has = |k: &str, v: &str| sent.iter().any(|(a, b)| a == k && b == v);
        assert!(has("amount", "1234") && has("currency", "cny"), "{sent:?}");
        assert!(has("metadata[tenant]", "acme") && has("metadata[key]", "topup-1"));
    }

    // A retry with the same key: the same PaymentIntent, no second one.
    let again = stripe
        .create_payment(&request("topup-1", "12.34"))
        .await
        .unwrap();
    assert_eq!(again.id, p.id);
    assert_eq!(fake.lock().unwrap().created, 1);
    // The same key for another amount: Stripe's idempotency error, not retryable.
    let err = stripe
        .create_payment(&request("topup-1", "99"))
        .await
        .unwrap_err();
    match &err {
        ProviderError::Api { status, kind, .. } => {
            assert_eq!((*status, kind.as_str()), (400, "idempotency_error"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());

    let read = stripe.retrieve_payment(&p.id).await.unwrap();
    assert_eq!(read, p);
    let err = stripe.retrieve_payment("pi_missing").await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Api { status: 404, code: Some(c), .. } if c == "resource_missing"),
        "{err:?}"
    );
    // Not an id: refused before any request (it would go into the path).
    let err = stripe.retrieve_payment("pi_../../v1/charges").await;
    assert!(matches!(err, Err(ProviderError::Invalid { .. })));

    // A zero-decimal currency goes as whole units.
    let jpy = CreatePayment {
        currency: "JPY".parse().unwrap(),
        ..request("topup-jpy", "1500")
    };
    let p = stripe.create_payment(&jpy).await.unwrap();
    assert_eq!(p.amount, "1500".parse::<Micros>().unwrap());
    assert!(
        fake.lock().unwrap().replies["topup-jpy"]
            .params
            .contains(&("amount".into(), "1500".into()))
    );
    // A fraction of a cent is refused, not rounded, and nothing is sent.
    let err = stripe.create_payment(&request("topup-2", "1.005")).await;
    assert!(matches!(err, Err(ProviderError::Invalid { .. })), "{err:?}");
    assert_eq!(fake.lock().unwrap().created, 2);

    // A wrong secret key: Stripe's 401.
    let wrong = StripeAdapter::new(&base, "sk_test_wrong", WEBHOOK_SECRET).unwrap();
    let err = wrong
        .create_payment(&request("topup-3", "1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Api { status: 401, .. }),
        "{err:?}"
    );
    // Nobody listening: a transport error, worth retrying.
    let down = adapter("http://127.0.0.1:9");
    let err = down
        .create_payment(&request("topup-4", "1"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

/// A `payment_intent.succeeded` event as Stripe delivers it.
fn succeeded_event(id: &str, intent: &str, amount: i64, metadata: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": 1_790_000_100,
        "data": {
            "object": {
                "id": intent,
                "object": "payment_intent",
                "amount": amount,
                "amount_capturable": 0,
                "amount_received": amount,
                "currency": "cny",
                "client_secret": format!("{intent}_secret_x"),
                "created": 1_790_000_000,
                "livemode": false,
                "metadata": metadata,
                "status": "succeeded",
            }
        },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": "req_1", "idempotency_key": "topup-1" },
        "type": "payment_intent.succeeded",
    }))
    .unwrap()
}

const NOW: i64 = 1_790_000_200;

#[tokio::test]
async fn webhooks_are_accepted_only_when_signed_recently_with_the_endpoint_secret() {
    let stripe = adapter("http://127.0.0.1:9");
    let meta = json!({ "tenant": "acme", "account": "a1", "key": "topup-1" });
    let payload = succeeded_event("evt_1", "pi_3Fake000001", 1234, meta);
    let header = signature_header(WEBHOOK_SECRET, &payload, NOW - 10);

    let ev = stripe.verify_webhook(&payload, &header, NOW).unwrap();
    assert_eq!(ev.id, "evt_1");
    assert_eq!(ev.event_type, "payment_intent.succeeded");
    let EventBody::PaymentSucceeded(p) = &ev.body else {
        panic!("{ev:?}");
    };
    assert_eq!(p.payment_id, "pi_3Fake000001");
    assert_eq!(p.amount_received, "12.34".parse::<Micros>().unwrap());
    assert_eq!(p.currency, Currency::CNY);
    let toll = p.toll.as_ref().unwrap();
    assert_eq!(
        (
            toll.tenant.as_str(),
            toll.account.as_str(),
            toll.key.as_str()
        ),
        ("acme", "a1", "topup-1")
    );
    assert_eq!(p.payment_key(), "stripe:pi_3Fake000001");

    // One byte changed after signing.
    let mut tampered = payload.clone();
    let at = tampered.iter().position(|&b| b == b'4').unwrap();
    tampered[at] = b'9';
    assert_eq!(
        stripe.verify_webhook(&tampered, &header, NOW),
        Err(WebhookError::Mismatch)
    );
    // Signed with another endpoint's secret.
    let other = signature_header("whsec_other", &payload, NOW);
    assert_eq!(
        stripe.verify_webhook(&payload, &other, NOW),
        Err(WebhookError::Mismatch)
    );
    // The timestamp is signed too: moving it breaks the signature.
    let sig = header.split_once(",v1=").unwrap().1;
    let moved = format!("t={NOW},v1={sig}");
    assert_eq!(
        stripe.verify_webhook(&payload, &moved, NOW),
        Err(WebhookError::Mismatch)
    );
    // Authentic but old (a replay), or from too far ahead.
    let old = signature_header(WEBHOOK_SECRET, &payload, NOW - 301);
    assert!(matches!(
        stripe.verify_webhook(&payload, &old, NOW),
        Err(WebhookError::OutsideTolerance { .. })
    ));
    let ahead = signature_header(WEBHOOK_SECRET, &payload, NOW + 301);
    assert!(matches!(
        stripe.verify_webhook(&payload, &ahead, NOW),
        Err(WebhookError::OutsideTolerance { .. })
    ));
    let edge = signature_header(WEBHOOK_SECRET, &payload, NOW - 300);
    assert!(stripe.verify_webhook(&payload, &edge, NOW).is_ok());
    // Several signatures (a secret being rolled): any one matching is enough.
    let good = header.split_once(",v1=").unwrap().1;
    let stale = other.split_once(",v1=").unwrap().1;
    let several = format!("t={},v1={stale},v1=nothex,v1={good},v0={stale}", NOW - 10);
    assert!(stripe.verify_webhook(&payload, &several, NOW).is_ok());
    let none_match = format!("t={},v1={stale},v1={stale}", NOW - 10);
    assert_eq!(
        stripe.verify_webhook(&payload, &none_match, NOW),
        Err(WebhookError::Mismatch)
    );
    // Malformed headers.
    let no_v1 = format!("t={},v0={good}", NOW - 10);
    assert_eq!(
        stripe.verify_webhook(&payload, &no_v1, NOW),
        Err(WebhookError::NoSignature)
    );
    for bad in ["", "v1=00", "t=soon,v1=00", "nonsense"] {
        assert!(
            matches!(
                stripe.verify_webhook(&payload, bad, NOW),
                Err(WebhookError::BadHeader(_))
            ),
            "{bad:?}"
        );
    }
    // A verified payload that is not an event.
    let junk = b"{\"hello\":1}";
    let h = signature_header(WEBHOOK_SECRET, junk, NOW);
    assert!(matches!(
        stripe.verify_webhook(junk, &h, NOW),
        Err(WebhookError::BadPayload(_))
    ));
}

#[tokio::test]
async fn other_events_and_payments_made_outside_toll_are_recognised() {
    let stripe = adapter("http://127.0.0.1:9");
    let refunded = serde_json::to_vec(&json!({
        "id": "evt_2",
        "object": "event",
        "created": NOW,
        "data": { "object": { "id": "ch_1", "object": "charge" } },
        "livemode": true,
        "type": "charge.refunded",
    }))
    .unwrap();
    let h = signature_header(WEBHOOK_SECRET, &refunded, NOW);
    let ev = stripe.verify_webhook(&refunded, &h, NOW).unwrap();
    assert_eq!(ev.body, EventBody::Other);
    assert_eq!(ev.event_type, "charge.refunded");
    assert!(ev.livemode);

    let foreign = succeeded_event("evt_3", "pi_2", 500, json!({ "order": "42" }));
    let h = signature_header(WEBHOOK_SECRET, &foreign, NOW);
    let ev = stripe.verify_webhook(&foreign, &h, NOW).unwrap();
    let EventBody::PaymentSucceeded(p) = ev.body else {
        panic!("not a payment");
    };
    assert_eq!(p.toll, None, "no Toll metadata: not Toll's to record");
    assert_eq!(p.metadata.get("order").map(String::as_str), Some("42"));
}

#[tokio::test]
async fn a_payment_created_through_the_fake_comes_back_in_its_webhook() {
    let (base, _fake) = fake_stripe().await;
    let stripe = adapter(&base);
    let p = stripe
        .create_payment(&request("topup-9", "88.8"))
        .await
        .unwrap();
    // The customer pays; Stripe reports the PaymentIntent with its metadata.
    let payload = succeeded_event(
        "evt_9",
        &p.id,
        8880,
        serde_json::to_value(&p.metadata).unwrap(),
    );
    let h = signature_header(WEBHOOK_SECRET, &payload, NOW);
    let ev = stripe.verify_webhook(&payload, &h, NOW).unwrap();
    let EventBody::PaymentSucceeded(s) = ev.body else {
        panic!("not a payment");
    };
    assert_eq!(s.payment_id, p.id);
    assert_eq!(s.amount_received, p.amount);
    assert_eq!(s.toll, p.toll);
    // Behind `dyn`, as the server keeps providers.
    let dynamic: Box<dyn PaymentProvider> = Box::new(stripe);
    assert_eq!(dynamic.name(), "stripe");
    assert_eq!(dynamic.retrieve_payment(&p.id).await.unwrap().id, p.id);
}
