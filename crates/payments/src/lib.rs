//! Payment providers: the interface Toll takes card and wallet payments through, the signed
//! webhooks providers report them with, and a Stripe adapter ([`stripe::StripeAdapter`],
//! PaymentIntents and `Stripe-Signature` webhooks).
//!
//! The flow: Toll asks the provider for a payment ([`PaymentProvider::create_payment`]) with
//! the tenant, the account and an idempotency key in its metadata; the customer pays on the
//! provider's page or widget (with the payment's `client_secret`); the provider calls Toll's
//! webhook; [`PaymentProvider::verify_webhook`] checks the signature and turns the event into
//! a [`WebhookEvent`]; a [`WebhookEvent`] of kind [`EventBody::PaymentSucceeded`] is recorded
//! as a payment in the store (`Store::record_provider_event`), once per event id.
//!
//! This crate knows nothing of the store: the server maps a [`PaymentSucceeded`] to the store's
//! payment request (account, amount, the provider's payment id as reference and, through
//! [`PaymentSucceeded::payment_key`], as idempotency key).
//!
//! Money crosses the boundary as [`Micros`] in a [`Currency`]; providers count in the
//! currency's minor units, and an amount with more decimals than that is refused rather than
//! rounded.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use toll_core::{Currency, Micros};

pub mod stripe;

/// A future a provider returns: boxed, so that `dyn PaymentProvider` works (the server keeps
/// the configured providers by name).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Longest idempotency key a provider is given (Stripe accepts 255 characters).
pub const MAX_KEY_LEN: usize = 255;
/// Longest metadata value (Stripe's limit is 500 characters).
pub const MAX_METADATA_VALUE: usize = 500;
/// Longest description (Stripe's limit is 1000 characters).
pub const MAX_DESCRIPTION: usize = 1000;

/// A payment provider.
pub trait PaymentProvider: Send + Sync + fmt::Debug {
    /// The provider's name as stored with payments (`stripe`).
    fn name(&self) -> &'static str;

    /// Asks the provider for a payment the customer then completes. The same
    /// [`CreatePayment::key`] returns the same payment (a retried request creates one).
    fn create_payment<'a>(
        &'a self,
        req: &'a CreatePayment,
    ) -> BoxFuture<'a, Result<ProviderPayment, ProviderError>>;

    /// Reads a payment back by the provider's id.
    fn retrieve_payment<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<ProviderPayment, ProviderError>>;

    /// Checks a webhook delivery's signature (`signature_header` is the provider's signature
    /// header's value, `now` the current time in Unix seconds) and parses its event.
    fn verify_webhook(
        &self,
        payload: &[u8],
        signature_header: &str,
        now: i64,
    ) -> Result<WebhookEvent, WebhookError>;
}

/// A payment to ask a provider for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePayment {
    /// The tenant's slug: the webhook handler finds the tenant by it.
    pub tenant: String,
    /// The account's code.
    pub account: String,
    /// Sent as the provider's idempotency key and kept in the metadata: 1..=255 printable
    /// ASCII characters without spaces.
    pub key: String,
    /// Positive, and whole in the currency's minor units.
    pub amount: Micros,
    pub currency: Currency,
    /// What the customer sees, if anything (at most 1000 characters).
    pub description: Option<String>,
}

impl CreatePayment {
    /// Checks the request before anything is sent.
    pub fn check(&self) -> Result<(), ProviderError> {
        for (field, value) in [("tenant", &self.tenant), ("account", &self.account)] {
            if value.is_empty()
                || value.chars().count() > MAX_METADATA_VALUE
                || value.chars().any(char::is_control)
            {
                return Err(ProviderError::invalid(
                    field,
                    format!("1 to {MAX_METADATA_VALUE} characters, no control characters"),
                ));
            }
        }
        if !valid_key(&self.key) {
            return Err(ProviderError::invalid(
                "key",
                format!("1 to {MAX_KEY_LEN} printable ASCII characters without spaces"),
            ));
        }
        if self.amount.0 <= 0 {
            return Err(ProviderError::invalid("amount", "must be positive"));
        }
        if let Some(d) = &self.description
            && (d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control))
        {
            return Err(ProviderError::invalid(
                "description",
                format!("at most {MAX_DESCRIPTION} characters, no control characters"),
            ));
        }
        Ok(())
    }
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic())
}

/// Where a provider's payment goes in Toll: what [`CreatePayment`] put in its metadata.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TollReference {
    pub tenant: String,
    pub account: String,
    pub key: String,
}

impl TollReference {
    /// The reference in `metadata`, when all three of its entries are there (a payment made
    /// outside Toll has none).
    pub fn from_metadata(metadata: &BTreeMap<String, String>) -> Option<TollReference> {
        Some(TollReference {
            tenant: metadata.get("tenant")?.clone(),
            account: metadata.get("account")?.clone(),
            key: metadata.get("key")?.clone(),
        })
    }
}

/// Where a provider's payment stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    RequiresCapture,
    Canceled,
    Succeeded,
    /// A status this version does not know (kept, not refused: providers add them).
    Other(String),
}

impl PaymentStatus {
    /// Stripe's names, which are also the common vocabulary.
    pub fn parse(s: &str) -> PaymentStatus {
        match s {
            "requires_payment_method" => PaymentStatus::RequiresPaymentMethod,
            "requires_confirmation" => PaymentStatus::RequiresConfirmation,
            "requires_action" => PaymentStatus::RequiresAction,
            "processing" => PaymentStatus::Processing,
            "requires_capture" => PaymentStatus::RequiresCapture,
            "canceled" => PaymentStatus::Canceled,
            "succeeded" => PaymentStatus::Succeeded,
            other => PaymentStatus::Other(other.to_string()),
        }
    }
}

/// A payment as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProviderPayment {
    /// The provider's id (`pi_…`).
    pub id: String,
    pub status: PaymentStatus,
    pub amount: Micros,
    /// What has been received so far (the whole amount once it succeeded).
    pub amount_received: Micros,
    pub currency: Currency,
    /// What the customer's browser or app completes the payment with; never logged.
    #[serde(skip)]
    pub client_secret: Option<String>,
    /// Unix seconds.
    pub created: i64,
    pub metadata: BTreeMap<String, String>,
    /// The metadata Toll put there, when it did.
    pub toll: Option<TollReference>,
}

/// A webhook event whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WebhookEvent {
    /// The provider's event id (`evt_…`): what makes handling a redelivery idempotent.
    pub id: String,
    /// The event's type as the provider names it (`payment_intent.succeeded`).
    pub event_type: String,
    /// Unix seconds.
    pub created: i64,
    pub livemode: bool,
    pub body: EventBody,
}

/// What an event says, for the events Toll acts on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EventBody {
    /// Money was received: record it.
    PaymentSucceeded(PaymentSucceeded),
    /// An event Toll does not act on: acknowledge it (so the provider stops retrying) and
    /// ignore it.
    Other,
}

/// A succeeded payment reported by a webhook.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaymentSucceeded {
    /// The provider's name (`stripe`).
    pub provider: &'static str,
    /// The provider's payment id (`pi_…`).
    pub payment_id: String,
    pub amount_received: Micros,
    pub currency: Currency,
    pub metadata: BTreeMap<String, String>,
    /// Where it goes in Toll; `None` for a payment made outside Toll.
    pub toll: Option<TollReference>,
}

impl PaymentSucceeded {
    /// The idempotency key to record it under: `provider:payment id`. Keyed by the payment,
    /// not the event, so that two events about one payment still record it once.
    pub fn payment_key(&self) -> String {
        format!("{}:{}", self.provider, self.payment_id)
    }
}

/// Why a provider call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Refused before anything was sent.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The provider answered with an error.
    #[error("the provider refused the request (HTTP {status}, {kind}): {message}")]
    Api {
        status: u16,
        /// Stripe's error type: `invalid_request_error`, `idempotency_error`, `card_error`,
        /// `api_error`, ...
        kind: String,
        /// Stripe's error code (`resource_missing`, ...), when given.
        code: Option<String>,
        message: String,
    },
    /// The provider could not be reached, or the connection broke.
    #[error("could not reach the provider: {0}")]
    Transport(#[from] reqwest::Error),
    /// The provider answered something this adapter cannot read.
    #[error("unexpected answer from the provider: {0}")]
    BadResponse(String),
}

impl ProviderError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ProviderError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// Whether the same request (with the same idempotency key) may succeed later: the
    /// network failed, the provider was rate-limiting or failing, or an idempotent request
    /// with the same key was still in flight (409).
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::Transport(_) => true,
            ProviderError::Api { status, .. } => *status == 409 || *status == 429 || *status >= 500,
            ProviderError::Invalid { .. } | ProviderError::BadResponse(_) => false,
        }
    }
}

/// Why a webhook delivery was refused. Answer it with a 400: nothing was recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("payload of {0} bytes is larger than allowed")]
    TooLarge(usize),
    #[error("malformed signature header: {0}")]
    BadHeader(&'static str),
    #[error("the signature header has no signature of the expected scheme")]
    NoSignature,
    #[error("no signature matches the payload")]
    Mismatch,
    #[error("signed at {timestamp}, more than {tolerance} s from now ({now})")]
    OutsideTolerance {
        timestamp: i64,
        now: i64,
        tolerance: i64,
    },
    #[error("payload: {0}")]
    BadPayload(String),
}

/// `amount` in minor units of a currency with `decimals` decimals; refused when it has more
/// decimals than that (a provider cannot charge a fraction of a cent).
pub fn to_minor(amount: Micros, decimals: u32) -> Result<i64, ProviderError> {
    let factor = minor_factor(decimals)?;
    if amount.0 % factor != 0 {
        return Err(ProviderError::invalid(
            "amount",
            format!("{amount} has more than {decimals} decimals"),
        ));
    }
    Ok(amount.0 / factor)
}

/// Minor units of a currency with `decimals` decimals as [`Micros`].
pub fn from_minor(minor: i64, decimals: u32) -> Result<Micros, ProviderError> {
    let factor = minor_factor(decimals)?;
    minor
        .checked_mul(factor)
        .map(Micros)
        .ok_or_else(|| ProviderError::BadResponse(format!("amount {minor} out of range")))
}

fn minor_factor(decimals: u32) -> Result<i64, ProviderError> {
    6u32.checked_sub(decimals)
        .map(|d| 10i64.pow(d))
        .ok_or_else(|| ProviderError::invalid("currency", "more than 6 decimals"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn amounts_convert_to_minor_units_exactly_or_not_at_all() {
        assert_eq!(to_minor(Micros(12_340_000), 2).unwrap(), 1234);
        assert_eq!(to_minor(Micros(1_000_000_000), 0).unwrap(), 1000);
        assert_eq!(to_minor(Micros(1_234_000), 3).unwrap(), 1234);
        assert!(
            to_minor(Micros(12_345_000), 2).is_err(),
            "a tenth of a cent"
        );
        assert_eq!(from_minor(1234, 2).unwrap(), Micros(12_340_000));
        assert!(from_minor(i64::MAX, 2).is_err());
    }

    #[test]
    fn requests_are_checked_before_sending() {
        let ok = CreatePayment {
            tenant: "acme".into(),
            account: "a1".into(),
            key: "topup-1".into(),
            amount: Micros(1_000_000),
            currency: Currency::CNY,
            description: None,
        };
        assert!(ok.check().is_ok());
        for bad in [
            CreatePayment {
                key: "has space".into(),
                ..ok.clone()
            },
            CreatePayment {
                amount: Micros(0),
                ..ok.clone()
            },
            CreatePayment {
                account: String::new(),
                ..ok.clone()
            },
            CreatePayment {
                description: Some("x".repeat(MAX_DESCRIPTION + 1)),
                ..ok.clone()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
