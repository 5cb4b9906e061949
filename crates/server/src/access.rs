//! Who may do what: permissions, the permissions of each role, and the scopes that narrow an
//! API key. Every route of the API names one permission ([`crate::api::ROUTES`]); the guard
//! checks it before the handler runs, so a route cannot forget its check.

use toll_store::users::Role;

/// One thing a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Perm {
    /// Any signed-in principal (its own session, its own profile).
    Authenticated,
    TariffRead,
    /// Upload and activate tariffs.
    TariffWrite,
    /// Price an event or authorise one (no side effects).
    Rate,
    PlanRead,
    /// Create and edit drafts, submit them.
    PlanEdit,
    /// Approve or reject a submitted plan (never one's own: the catalog's four-eyes rule).
    PlanApprove,
    /// Activate an approved plan, retire an active one.
    PlanPublish,
    AccountRead,
    /// Customers, accounts, subscribers, subscriptions and plan changes.
    AccountWrite,
    /// Credit a prepaid balance.
    TopUp,
    CdrRead,
    /// Upload CDR files.
    CdrWrite,
    SuspenseRead,
    /// Fix, re-process or discard suspense items.
    SuspenseWrite,
    LedgerRead,
    AuditRead,
    /// Invoices, credit notes and statements.
    InvoiceRead,
    /// Bill runs; finalize or void drafts; credit notes.
    InvoiceWrite,
    /// Users and API keys.
    UserAdmin,
    /// A customer's own account: balance, allowances, usage, top-up requests.
    SelfService,
}

use Perm::*;

/// Every permission, for tests that enumerate them.
pub const ALL_PERMS: [Perm; 21] = [
    Authenticated,
    TariffRead,
    TariffWrite,
    Rate,
    PlanRead,
    PlanEdit,
    PlanApprove,
    PlanPublish,
    AccountRead,
    AccountWrite,
    TopUp,
    CdrRead,
    CdrWrite,
    SuspenseRead,
    SuspenseWrite,
    LedgerRead,
    AuditRead,
    InvoiceRead,
    InvoiceWrite,
    UserAdmin,
    SelfService,
];

const READS: [Perm; 9] = [
    TariffRead,
    PlanRead,
    AccountRead,
    CdrRead,
    SuspenseRead,
    LedgerRead,
    AuditRead,
    InvoiceRead,
    Authenticated,
];

/// The permissions of a role. Staff roles never get [`SelfService`] (it is bound to one
/// account); customers get nothing else.
pub fn role_allows(role: Role, perm: Perm) -> bool {
    match role {
        Role::Admin => perm != SelfService,
        Role::Operator => matches!(
            perm,
            Authenticated
                | TariffRead
                | TariffWrite
                | Rate
                | PlanRead
                | PlanEdit
                | PlanPublish
                | AccountRead
                | AccountWrite
                | TopUp
                | CdrRead
                | CdrWrite
                | SuspenseRead
                | SuspenseWrite
                | LedgerRead
                | InvoiceRead
                | InvoiceWrite
        ),
        Role::Approver => matches!(
            perm,
            Authenticated | TariffRead | Rate | PlanRead | PlanApprove | AccountRead
        ),
        Role::Auditor => READS.contains(&perm),
        // The open platform's provider routes come with billing (issue 6).
        Role::Provider => matches!(perm, Authenticated | Rate),
        Role::Customer => matches!(perm, Authenticated | SelfService),
    }
}

/// What an API key may be limited to. A key's permissions are its role's, narrowed to its
/// scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every read.
    Read,
    /// Every change its role may make.
    Write,
    /// Rating and authorisation only.
    Rate,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Rate => "rate",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "rate" => Some(Scope::Rate),
            _ => None,
        }
    }

    pub fn covers(self, perm: Perm) -> bool {
        match self {
            Scope::Read => READS.contains(&perm),
            Scope::Rate => matches!(perm, Rate | Authenticated),
            Scope::Write => !READS.contains(&perm) || perm == Authenticated,
        }
    }
}

/// Whether a role may hand out keys with `other`'s powers: never more than its own.
pub fn role_covers(role: Role, other: Role) -> bool {
    ALL_PERMS
        .iter()
        .all(|&p| !role_allows(other, p) || role_allows(role, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditor_reads_only_and_customer_is_self_service_only() {
        for p in ALL_PERMS {
            assert_eq!(role_allows(Role::Auditor, p), READS.contains(&p), "{p:?}");
            assert_eq!(
                role_allows(Role::Customer, p),
                matches!(p, Authenticated | SelfService),
                "{p:?}"
            );
        }
    }

    #[test]
    fn only_approvers_and_admins_approve() {
        let approvers: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| role_allows(*r, PlanApprove))
            .collect();
        assert_eq!(approvers, vec![Role::Admin, Role::Approver]);
    }

    #[test]
    fn keys_never_exceed_their_creator() {
        assert!(role_covers(Role::Admin, Role::Operator));
        assert!(!role_covers(Role::Operator, Role::Admin));
        assert!(!role_covers(Role::Approver, Role::Operator));
        assert!(role_covers(Role::Operator, Role::Operator));
    }

    #[test]
    fn scopes_split_reads_from_writes() {
        assert!(Scope::Read.covers(CdrRead));
        assert!(!Scope::Read.covers(TopUp));
        assert!(Scope::Write.covers(TopUp));
        assert!(!Scope::Write.covers(CdrRead));
        assert!(Scope::Rate.covers(Rate));
        assert!(!Scope::Rate.covers(TariffRead));
    }
}
