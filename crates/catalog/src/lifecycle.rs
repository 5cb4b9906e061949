//! A plan version's lifecycle: draft → pending approval → approved → active → retired.
//!
//! Tariffs are money: a plan reaches subscribers only after a second person has checked it
//! (maker–checker, 四眼原则). The rules live here as pure functions so that both storage engines
//! and every interface (CLI, HTTP) apply exactly the same ones; the store records who did what.
//!
//! ```text
//!            submit              approve             activate           retire
//!   Draft ──────────▶ PendingApproval ──────▶ Approved ──────────▶ Active ──────▶ Retired
//!     ▲                     │ reject
//!     └─────────────────────┘
//! ```
//!
//! Approve and Reject must be done by someone other than the version's author. Editing a draft
//! changes it in place; editing an approved, active or retired version makes a new draft version
//! (what subscribers were sold never changes under them); a version pending approval cannot be
//! edited, since the checker would approve something other than what they read.

use std::fmt;
use std::str::FromStr;

/// Longest user name an [`Actor`] may have, in characters.
pub const MAX_ACTOR_CHARS: usize = 64;

/// Where a plan version is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PlanStatus {
    /// Being written; editable in place.
    Draft,
    /// Submitted; waiting for a second person to approve or reject it.
    PendingApproval,
    /// Checked; not yet on sale.
    Approved,
    /// On sale: new subscriptions may take it.
    Active,
    /// No longer sold; existing subscribers keep it.
    Retired,
}

impl PlanStatus {
    pub const ALL: [PlanStatus; 5] = [
        PlanStatus::Draft,
        PlanStatus::PendingApproval,
        PlanStatus::Approved,
        PlanStatus::Active,
        PlanStatus::Retired,
    ];

    /// The stored and displayed name (`pending_approval`).
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Draft => "draft",
            PlanStatus::PendingApproval => "pending_approval",
            PlanStatus::Approved => "approved",
            PlanStatus::Active => "active",
            PlanStatus::Retired => "retired",
        }
    }
}

impl fmt::Display for PlanStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a plan status (draft, pending_approval, approved, active, retired)")]
pub struct UnknownStatus(pub String);

impl FromStr for PlanStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PlanStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// Something a user does to a plan version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlanAction {
    Submit,
    Approve,
    /// Sends a pending version back to draft.
    Reject,
    Activate,
    Retire,
}

impl PlanAction {
    pub const ALL: [PlanAction; 5] = [
        PlanAction::Submit,
        PlanAction::Approve,
        PlanAction::Reject,
        PlanAction::Activate,
        PlanAction::Retire,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PlanAction::Submit => "submit",
            PlanAction::Approve => "approve",
            PlanAction::Reject => "reject",
            PlanAction::Activate => "activate",
            PlanAction::Retire => "retire",
        }
    }

    /// The one status this action applies to.
    pub fn from_status(self) -> PlanStatus {
        match self {
            PlanAction::Submit => PlanStatus::Draft,
            PlanAction::Approve | PlanAction::Reject => PlanStatus::PendingApproval,
            PlanAction::Activate => PlanStatus::Approved,
            PlanAction::Retire => PlanStatus::Active,
        }
    }

    /// The status it leads to.
    pub fn to_status(self) -> PlanStatus {
        match self {
            PlanAction::Submit => PlanStatus::PendingApproval,
            PlanAction::Approve => PlanStatus::Approved,
            PlanAction::Reject => PlanStatus::Draft,
            PlanAction::Activate => PlanStatus::Active,
            PlanAction::Retire => PlanStatus::Retired,
        }
    }

    /// The past participle, for messages ("can be approved").
    pub fn past(self) -> &'static str {
        match self {
            PlanAction::Submit => "submitted",
            PlanAction::Approve => "approved",
            PlanAction::Reject => "rejected",
            PlanAction::Activate => "activated",
            PlanAction::Retire => "retired",
        }
    }

    /// Whether the author of the version is barred from this action (maker–checker).
    pub fn needs_checker(self) -> bool {
        matches!(self, PlanAction::Approve | PlanAction::Reject)
    }
}

impl fmt::Display for PlanAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a plan action (submit, approve, reject, activate, retire)")]
pub struct UnknownAction(pub String);

impl FromStr for PlanAction {
    type Err = UnknownAction;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PlanAction::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_string()))
    }
}

/// The user doing something: a non-empty name of at most 64 characters without control
/// characters, surrounding spaces removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    #[error("a user name must not be empty")]
    Empty,
    #[error("user name {0:?} is longer than {MAX_ACTOR_CHARS} characters")]
    TooLong(String),
    #[error("user name {0:?} contains control characters")]
    Control(String),
}

impl Actor {
    pub fn new(name: &str) -> Result<Actor, ActorError> {
        let n = name.trim();
        if n.is_empty() {
            Err(ActorError::Empty)
        } else if n.chars().count() > MAX_ACTOR_CHARS {
            Err(ActorError::TooLong(n.to_string()))
        } else if n.chars().any(char::is_control) {
            Err(ActorError::Control(n.to_string()))
        } else {
            Ok(Actor(n.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether two names are the same person for maker–checker: compared without regard to
    /// case, so that `Alice` cannot approve what `alice` submitted.
    pub fn same_person(&self, other: &Actor) -> bool {
        self.0.to_lowercase() == other.0.to_lowercase()
    }
}

impl FromStr for Actor {
    type Err = ActorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Actor::new(s)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a lifecycle step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error(
        "cannot {action} a plan that is {status}: only a plan that is {required} can be {done}",
        required = action.from_status(),
        done = action.past()
    )]
    WrongStatus {
        status: PlanStatus,
        action: PlanAction,
    },
    #[error(
        "{actor} cannot {action} this plan: they are its author; another user must check it \
         (maker–checker)"
    )]
    OwnVersion { action: PlanAction, actor: Actor },
    #[error(
        "cannot edit a plan that is pending_approval: reject it back to draft first, so that \
         the approver checks what is approved"
    )]
    EditPending,
}

/// The status a version moves to when `actor` does `action` to it. `author` is who submitted
/// the version (the maker); Approve and Reject are refused when `actor` is the same person.
pub fn transition(
    status: PlanStatus,
    action: PlanAction,
    author: &Actor,
    actor: &Actor,
) -> Result<PlanStatus, LifecycleError> {
    if status != action.from_status() {
        return Err(LifecycleError::WrongStatus { status, action });
    }
    if action.needs_checker() && actor.same_person(author) {
        return Err(LifecycleError::OwnVersion {
            action,
            actor: actor.clone(),
        });
    }
    Ok(action.to_status())
}

/// Whether new subscriptions may take a version: only while it is on sale.
pub fn accepts_new_subscriptions(status: PlanStatus) -> bool {
    status == PlanStatus::Active
}

/// Whether subscribers already on a version keep being served (charged, given allowances):
/// while it is active and after it is retired; retiring stops sales, not service.
pub fn serves_existing(status: PlanStatus) -> bool {
    matches!(status, PlanStatus::Active | PlanStatus::Retired)
}

/// What editing a version does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EditOutcome {
    /// The draft itself is changed.
    InPlace,
    /// A new draft version is made from this one; this one stays as it is.
    NewDraftVersion,
}

/// How an edit of a version in `status` is made: in place for a draft, as a new draft version
/// for an approved, active or retired one; refused while pending approval.
pub fn edit(status: PlanStatus) -> Result<EditOutcome, LifecycleError> {
    match status {
        PlanStatus::Draft => Ok(EditOutcome::InPlace),
        PlanStatus::PendingApproval => Err(LifecycleError::EditPending),
        PlanStatus::Approved | PlanStatus::Active | PlanStatus::Retired => {
            Ok(EditOutcome::NewDraftVersion)
        }
    }
}
