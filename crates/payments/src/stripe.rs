//! Stripe: PaymentIntents and signed webhooks, as Stripe's API defines them.
//!
//! - Creating: `POST /v1/payment_intents`, form-encoded (`amount` in the currency's minor
//!   units, `currency` in lower case, `metadata[tenant]`, `metadata[account]`,
//!   `metadata[key]`), authenticated with the secret key as a Bearer token, with an
//!   `Idempotency-Key` header: Stripe answers a retried request with the same PaymentIntent.
//! - Reading: `GET /v1/payment_intents/{id}`.
//! - Webhooks: the `Stripe-Signature` header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, each
//!   `v1` an HMAC-SHA256 of `"{t}.{payload}"` keyed with the endpoint's signing secret (several
//!   while a secret is being rolled). A delivery is accepted when any `v1` matches (compared in
//!   constant time) and `t` is within [`DEFAULT_TOLERANCE_S`] of now — in either direction,
//!   which is stricter than Stripe's libraries (they accept any future `t`): a replay must be
//!   recent, whatever the clocks say.
//!
//! The adapter speaks to `base_url`, `https://api.stripe.com` in production and a local fake
//! in tests. The workspace's HTTP client is built without TLS; to reach Stripe itself, give
//! [`StripeAdapter::with_client`] a client with TLS enabled.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use toll_core::{Currency, Micros};

use crate::{
    BoxFuture, CreatePayment, EventBody, PaymentProvider, PaymentStatus, PaymentSucceeded,
    ProviderError, ProviderPayment, TollReference, WebhookError, WebhookEvent, from_minor,
    to_minor,
};

/// Stripe's API.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";
/// How old (or how far ahead) a webhook's signed timestamp may be: Stripe's libraries' default.
pub const DEFAULT_TOLERANCE_S: i64 = 300;
/// Largest webhook payload accepted (Stripe's events are a few KiB).
pub const MAX_WEBHOOK_BYTES: usize = 1 << 20;
/// Longest `Stripe-Signature` header accepted.
pub const MAX_SIGNATURE_HEADER: usize = 4096;
/// Most `v1` signatures one header may carry (Stripe sends one per active secret).
pub const MAX_SIGNATURES: usize = 8;
/// Largest answer read from the API.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Stripe's largest amount: eight digits of minor units.
pub const MAX_MINOR_AMOUNT: i64 = 99_999_999;
/// The provider's name as stored with payments.
pub const PROVIDER: &str = "stripe";

type HmacSha256 = Hmac<Sha256>;

/// Decimals of `currency` as Stripe counts it: zero-decimal currencies count whole units,
/// three-decimal ones thousandths, every other currency hundredths (Icelandic króna too:
/// Stripe keeps it two-decimal for compatibility).
pub fn decimals(currency: Currency) -> u32 {
    match currency.as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "JPY" | "KMF" | "KRW" | "MGA" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "JOD" | "KWD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// `amount` in Stripe's minor units of `currency`, with Stripe's rules: three-decimal
/// currencies in multiples of 10, ISK in whole krónur, at most eight digits.
pub fn minor_amount(amount: Micros, currency: Currency) -> Result<i64, ProviderError> {
    let minor = to_minor(amount, decimals(currency))?;
    let step = match (currency.as_str(), decimals(currency)) {
        ("ISK", _) => 100,
        (_, 3) => 10,
        _ => 1,
    };
    if minor % step != 0 {
        return Err(ProviderError::invalid(
            "amount",
            format!("Stripe takes {currency} in multiples of {step} minor units"),
        ));
    }
    if !(1..=MAX_MINOR_AMOUNT).contains(&minor) {
        return Err(ProviderError::invalid(
            "amount",
            format!("1 to {MAX_MINOR_AMOUNT} minor units"),
        ));
    }
    Ok(minor)
}

/// The `Stripe-Signature` header Stripe would send for `payload` signed with `secret` at
/// `timestamp` (Unix seconds): for tests, and for anything that must produce signed
/// deliveries (a server's own webhook tests).
pub fn signature_header(secret: &str, payload: &[u8], timestamp: i64) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(sign(secret, timestamp, payload))
    )
}

/// The HMAC-SHA256 key block for `secret`, normalised as HMAC (RFC 2104) does it: a key
/// longer than the block is hashed, a shorter one padded with zeros. Building the block here
/// lets the MAC be made with the infallible `Mac::new` instead of `new_from_slice`, whose error
/// HMAC never returns but which would still need handling.
fn key_block(secret: &str) -> hmac::digest::Key<HmacSha256> {
    use sha2::Digest;
    let mut block = hmac::digest::Key::<HmacSha256>::default();
    let bytes = secret.as_bytes();
    if bytes.len() > block.len() {
        let digest = Sha256::digest(bytes);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..bytes.len()].copy_from_slice(bytes);
    }
    block
}

fn mac(secret: &str, timestamp: i64, payload: &[u8]) -> HmacSha256 {
    let mut mac = <HmacSha256 as Mac>::new(&key_block(secret));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> Vec<u8> {
    mac(secret, timestamp, payload)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// The timestamp and `v1` signatures of a `Stripe-Signature` header.
#[derive(Debug)]
struct SignatureHeader {
    timestamp: i64,
    v1: Vec<Vec<u8>>,
}

fn parse_header(header: &str) -> Result<SignatureHeader, WebhookError> {
    if header.len() > MAX_SIGNATURE_HEADER {
        return Err(WebhookError::BadHeader("too long"));
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((k, v)) = item.split_once('=') else {
            return Err(WebhookError::BadHeader("an item is not key=value"));
        };
        match k.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(WebhookError::BadHeader("two timestamps"));
                }
                let t = v
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| WebhookError::BadHeader("the timestamp is not a number"))?;
                timestamp = Some(t);
            }
            "v1" => {
                if v1.len() == MAX_SIGNATURES {
                    return Err(WebhookError::BadHeader("too many signatures"));
                }
                // A signature that is not hex cannot match; it is skipped, like Stripe's
                // libraries skip it (another one may).
                if let Ok(bytes) = hex::decode(v.trim()) {
                    v1.push(bytes);
                }
            }
            // v0 (test-mode legacy) and schemes to come are not ours to check.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::BadHeader("no timestamp"))?;
    if v1.is_empty() {
        return Err(WebhookError::NoSignature);
    }
    Ok(SignatureHeader { timestamp, v1 })
}

/// Checks a `Stripe-Signature` header against `payload` and `secret`: any `v1` signature
/// matching in constant time, then the timestamp within `tolerance_s` of `now`.
pub fn verify_signature(
    secret: &str,
    payload: &[u8],
    header: &str,
    now: i64,
    tolerance_s: i64,
) -> Result<(), WebhookError> {
    if payload.len() > MAX_WEBHOOK_BYTES {
        return Err(WebhookError::TooLarge(payload.len()));
    }
    let h = parse_header(header)?;
    let expected = mac(secret, h.timestamp, payload);
    // `verify_slice` compares in constant time; trying every signature in order reveals at
    // most which one matched, not anything of the expected value.
    if !h
        .v1
        .iter()
        .any(|s| expected.clone().verify_slice(s).is_ok())
    {
        return Err(WebhookError::Mismatch);
    }
    if now.abs_diff(h.timestamp) > tolerance_s.unsigned_abs() {
        return Err(WebhookError::OutsideTolerance {
            timestamp: h.timestamp,
            now,
            tolerance: tolerance_s,
        });
    }
    Ok(())
}

/// A Stripe event as delivered (the fields Toll reads).
#[derive(Debug, serde::Deserialize)]
struct RawEvent {
    id: String,
    object: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    #[serde(default)]
    livemode: bool,
    data: RawEventData,
}

#[derive(Debug, serde::Deserialize)]
struct RawEventData {
    object: serde_json::Value,
}

/// A PaymentIntent as Stripe returns it (the fields Toll reads).
#[derive(Debug, serde::Deserialize)]
struct RawPaymentIntent {
    id: String,
    object: String,
    amount: i64,
    #[serde(default)]
    amount_received: i64,
    currency: String,
    status: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

/// Stripe's error answer.
#[derive(Debug, serde::Deserialize)]
struct RawErrorBody {
    error: RawError,
}

#[derive(Debug, serde::Deserialize)]
struct RawError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: String,
}

fn currency_of(s: &str) -> Result<Currency, String> {
    s.parse::<Currency>().map_err(|e| e.to_string())
}

impl RawPaymentIntent {
    fn into_payment(self) -> Result<ProviderPayment, String> {
        if self.object != "payment_intent" {
            return Err(format!("object {:?} is not a payment_intent", self.object));
        }
        let currency = currency_of(&self.currency)?;
        let d = decimals(currency);
        let toll = TollReference::from_metadata(&self.metadata);
        Ok(ProviderPayment {
            amount: from_minor(self.amount, d).map_err(|e| e.to_string())?,
            amount_received: from_minor(self.amount_received, d).map_err(|e| e.to_string())?,
            id: self.id,
            status: PaymentStatus::parse(&self.status),
            currency,
            client_secret: self.client_secret,
            created: self.created,
            metadata: self.metadata,
            toll,
        })
    }
}

/// Parses a verified delivery's payload into an event.
pub fn parse_event(payload: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let bad = |e: String| WebhookError::BadPayload(e);
    let raw: RawEvent = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
    if raw.object != "event" {
        return Err(bad(format!("object {:?} is not an event", raw.object)));
    }
    let body = if raw.event_type == "payment_intent.succeeded" {
        let pi: RawPaymentIntent =
            serde_json::from_value(raw.data.object).map_err(|e| bad(e.to_string()))?;
        let p = pi.into_payment().map_err(bad)?;
        if p.amount_received.0 <= 0 {
            return Err(bad(format!("{} succeeded with nothing received", p.id)));
        }
        EventBody::PaymentSucceeded(PaymentSucceeded {
            provider: PROVIDER,
            payment_id: p.id,
            amount_received: p.amount_received,
            currency: p.currency,
            metadata: p.metadata,
            toll: p.toll,
        })
    } else {
        EventBody::Other
    };
    Ok(WebhookEvent {
        id: raw.id,
        event_type: raw.event_type,
        created: raw.created,
        livemode: raw.livemode,
        body,
    })
}

/// Whether `id` can be a PaymentIntent id: it goes into a URL path.
fn valid_intent_id(id: &str) -> bool {
    id.len() > 3
        && id.len() <= 255
        && id.starts_with("pi_")
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The Stripe adapter: the API at `base_url` with a secret key, and webhooks signed with the
/// endpoint's secret.
#[derive(Clone)]
pub struct StripeAdapter {
    base_url: String,
    secret_key: String,
    webhook_secret: String,
    tolerance_s: i64,
    client: reqwest::Client,
}

/// Secrets are never printed.
impl fmt::Debug for StripeAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeAdapter")
            .field("base_url", &self.base_url)
            .field("secret_key", &"<redacted>")
            .field("webhook_secret", &"<redacted>")
            .field("tolerance_s", &self.tolerance_s)
            .finish()
    }
}

impl StripeAdapter {
    /// An adapter for the API at `base_url` ([`DEFAULT_BASE_URL`] for Stripe itself), with the
    /// account's secret key (`sk_…`) and the webhook endpoint's signing secret (`whsec_…`).
    pub fn new(
        base_url: impl Into<String>,
        secret_key: impl Into<String>,
        webhook_secret: impl Into<String>,
    ) -> Result<StripeAdapter, ProviderError> {
        let base_url = base_url.into().trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ProviderError::invalid(
                "base_url",
                format!("{base_url:?}: an http:// or https:// URL"),
            ));
        }
        let (secret_key, webhook_secret) = (secret_key.into(), webhook_secret.into());
        for (field, v) in [
            ("secret_key", &secret_key),
            ("webhook_secret", &webhook_secret),
        ] {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ProviderError::invalid(
                    field,
                    "required: printable ASCII without spaces",
                ));
            }
        }
        // Stripe asks clients to allow 80 s for a response; a connection takes far less.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(80))
            .build()?;
        Ok(StripeAdapter {
            base_url,
            secret_key,
            webhook_secret,
            tolerance_s: DEFAULT_TOLERANCE_S,
            client,
        })
    }

    /// Uses `client` for API calls (one with TLS, a proxy, other timeouts).
    pub fn with_client(mut self, client: reqwest::Client) -> StripeAdapter {
        self.client = client;
        self
    }

    /// Accepts webhooks signed up to `seconds` from now (default [`DEFAULT_TOLERANCE_S`]).
    pub fn with_tolerance(mut self, seconds: i64) -> StripeAdapter {
        self.tolerance_s = seconds.max(0);
        self
    }

    /// Reads an API answer: the PaymentIntent, or Stripe's error.
    async fn answer(resp: reqwest::Response) -> Result<ProviderPayment, ProviderError> {
        let status = resp.status();
        let body = resp.bytes().await?;
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(ProviderError::BadResponse(format!(
                "{} bytes of answer",
                body.len()
            )));
        }
        if !status.is_success() {
            let e = serde_json::from_slice::<RawErrorBody>(&body).map_err(|_| {
                ProviderError::BadResponse(format!("HTTP {status} without Stripe's error body"))
            })?;
            return Err(ProviderError::Api {
                status: status.as_u16(),
                kind: e.error.kind,
                code: e.error.code,
                message: e.error.message,
            });
        }
        let pi: RawPaymentIntent = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::BadResponse(format!("payment intent: {e}")))?;
        pi.into_payment().map_err(ProviderError::BadResponse)
    }

    async fn create(&self, req: &CreatePayment) -> Result<ProviderPayment, ProviderError> {
        req.check()?;
        let amount = minor_amount(req.amount, req.currency)?;
        let mut form: Vec<(&str, String)> = vec![
            ("amount", amount.to_string()),
            ("currency", req.currency.as_str().to_ascii_lowercase()),
            ("metadata[tenant]", req.tenant.clone()),
            ("metadata[account]", req.account.clone()),
            ("metadata[key]", req.key.clone()),
        ];
        if let Some(d) = &req.description {
            form.push(("description", d.clone()));
        }
        let resp = self
            .client
            .post(format!("{}/v1/payment_intents", self.base_url))
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", &req.key)
            .form(&form)
            .send()
            .await?;
        let p = Self::answer(resp).await?;
        if p.amount != req.amount || p.currency != req.currency {
            return Err(ProviderError::BadResponse(format!(
                "asked for {} {}, Stripe answered {} {}",
                req.amount, req.currency, p.amount, p.currency
            )));
        }
        Ok(p)
    }

    async fn retrieve(&self, id: &str) -> Result<ProviderPayment, ProviderError> {
        if !valid_intent_id(id) {
            return Err(ProviderError::invalid(
                "id",
                format!("{id:?} is not a PaymentIntent id (pi_…)"),
            ));
        }
        let resp = self
            .client
            .get(format!("{}/v1/payment_intents/{id}", self.base_url))
            .bearer_auth(&self.secret_key)
            .send()
            .await?;
        Self::answer(resp).await
    }
}

impl PaymentProvider for StripeAdapter {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn create_payment<'a>(
        &'a self,
        req: &'a CreatePayment,
    ) -> BoxFuture<'a, Result<ProviderPayment, ProviderError>> {
        Box::pin(self.create(req))
    }

    fn retrieve_payment<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<ProviderPayment, ProviderError>> {
        Box::pin(self.retrieve(id))
    }

    fn verify_webhook(
        &self,
        payload: &[u8],
        signature_header: &str,
        now: i64,
    ) -> Result<WebhookEvent, WebhookError> {
        verify_signature(
            &self.webhook_secret,
            payload,
            signature_header,
            now,
            self.tolerance_s,
        )?;
        parse_event(payload)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn amounts_follow_stripes_currency_rules() {
        let m = |s: &str| s.parse::<Micros>().unwrap();
        assert_eq!(minor_amount(m("12.34"), Currency::CNY).unwrap(), 1234);
        let jpy: Currency = "JPY".parse().unwrap();
        assert_eq!(minor_amount(m("1000"), jpy).unwrap(), 1000);
        assert!(minor_amount(m("1000.5"), jpy).is_err());
        let kwd: Currency = "KWD".parse().unwrap();
        assert_eq!(minor_amount(m("1.23"), kwd).unwrap(), 1230);
        assert!(
            minor_amount(m("1.234"), kwd).is_err(),
            "multiples of 10 fils"
        );
        let isk: Currency = "ISK".parse().unwrap();
        assert_eq!(minor_amount(m("500"), isk).unwrap(), 50_000);
        assert!(minor_amount(m("500.5"), isk).is_err());
        assert!(
            minor_amount(m("1000000"), Currency::USD).is_err(),
            "nine digits"
        );
    }

    #[test]
    fn headers_parse_strictly_enough() {
        assert_eq!(
            parse_header("t=1,v1=00,v0=zz").unwrap().timestamp,
            1,
            "v0 ignored"
        );
        assert_eq!(
            parse_header("t=1,v0=00").unwrap_err(),
            WebhookError::NoSignature
        );
        assert!(matches!(
            parse_header("v1=00"),
            Err(WebhookError::BadHeader(_))
        ));
        assert!(matches!(
            parse_header("t=x,v1=00"),
            Err(WebhookError::BadHeader(_))
        ));
        assert!(matches!(
            parse_header("garbage"),
            Err(WebhookError::BadHeader(_))
        ));
        assert!(matches!(
            parse_header("t=1,t=2,v1=00"),
            Err(WebhookError::BadHeader(_))
        ));
    }

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_payload() {
        // Computed independently: Python's hmac.new(key, b"1700000000.{}", sha256).
        assert_eq!(
            hex::encode(sign("whsec_test", 1_700_000_000, b"{}")),
            "35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
        // Keys longer than the block are hashed first, as `new_from_slice` does.
        let long = "k".repeat(100);
        let mut reference =
            <HmacSha256 as hmac::digest::KeyInit>::new_from_slice(long.as_bytes()).unwrap();
        reference.update(b"1.x");
        assert_eq!(
            reference.finalize().into_bytes().to_vec(),
            sign(&long, 1, b"x")
        );
    }

    #[test]
    fn secrets_are_not_printed() {
        let a = StripeAdapter::new("http://127.0.0.1:1", "sk_test_secret", "whsec_secret").unwrap();
        let shown = format!("{a:?}");
        assert!(!shown.contains("sk_test_secret") && !shown.contains("whsec_secret"));
        assert!(StripeAdapter::new("ftp://x", "sk", "wh").is_err());
        assert!(StripeAdapter::new(DEFAULT_BASE_URL, "", "wh").is_err());
    }
}
