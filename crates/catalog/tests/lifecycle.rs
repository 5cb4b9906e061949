#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The plan lifecycle: every status × action pair, maker–checker, sales/service and editing.

use toll_catalog::lifecycle::{
    Actor, ActorError, EditOutcome, LifecycleError, PlanAction, PlanStatus,
    accepts_new_subscriptions, edit, serves_existing, transition,
};

fn actor(n: &str) -> Actor {
    Actor::new(n).unwrap()
}

#[test]
fn the_happy_path() {
    let (maker, checker) = (actor("alice"), actor("bob"));
    let mut s = PlanStatus::Draft;
    for (action, want) in [
        (PlanAction::Submit, PlanStatus::PendingApproval),
        (PlanAction::Approve, PlanStatus::Approved),
        (PlanAction::Activate, PlanStatus::Active),
        (PlanAction::Retire, PlanStatus::Retired),
    ] {
        s = transition(s, action, &maker, &checker).unwrap();
        assert_eq!(s, want);
    }
}

#[test]
fn every_status_and_action_pair() {
    let (maker, checker) = (actor("alice"), actor("bob"));
    use PlanAction::*;
    use PlanStatus::*;
    let allowed = [
        (Draft, Submit, PendingApproval),
        (PendingApproval, Approve, Approved),
        (PendingApproval, Reject, Draft),
        (Approved, Activate, Active),
        (Active, Retire, Retired),
    ];
    for status in PlanStatus::ALL {
        for action in PlanAction::ALL {
            let got = transition(status, action, &maker, &checker);
            match allowed
                .iter()
                .find(|(s, a, _)| *s == status && *a == action)
            {
                Some((_, _, to)) => assert_eq!(got, Ok(*to), "{status} {action}"),
                None => {
                    assert_eq!(
                        got,
                        Err(LifecycleError::WrongStatus { status, action }),
                        "{status} {action}"
                    );
                    let msg = got.unwrap_err().to_string();
                    assert!(
                        msg.contains(status.as_str()) && msg.contains(action.as_str()),
                        "{msg}"
                    );
                }
            }
        }
    }
}

#[test]
fn refusals_name_status_and_action() {
    let a = actor("alice");
    let e = transition(PlanStatus::Draft, PlanAction::Activate, &a, &a).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot activate a plan that is draft: only a plan that is approved can be activated"
    );
    let e = transition(PlanStatus::Approved, PlanAction::Retire, &a, &a).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot retire a plan that is approved: only a plan that is active can be retired"
    );
}

#[test]
fn maker_cannot_check_their_own_version() {
    let alice = actor("alice");
    for action in [PlanAction::Approve, PlanAction::Reject] {
        let e = transition(PlanStatus::PendingApproval, action, &alice, &alice).unwrap_err();
        assert_eq!(
            e,
            LifecycleError::OwnVersion {
                action,
                actor: alice.clone()
            }
        );
        assert!(e.to_string().contains("maker–checker"), "{e}");
        // Case and surrounding spaces do not make another person.
        let e = transition(
            PlanStatus::PendingApproval,
            action,
            &alice,
            &actor("  ALICE "),
        );
        assert!(matches!(e, Err(LifecycleError::OwnVersion { .. })));
    }
    // The author may submit, activate and retire their own version.
    assert!(transition(PlanStatus::Draft, PlanAction::Submit, &alice, &alice).is_ok());
    assert!(transition(PlanStatus::Approved, PlanAction::Activate, &alice, &alice).is_ok());
    assert!(transition(PlanStatus::Active, PlanAction::Retire, &alice, &alice).is_ok());
}

#[test]
fn wrong_status_is_reported_before_maker_checker() {
    let alice = actor("alice");
    assert!(matches!(
        transition(PlanStatus::Draft, PlanAction::Approve, &alice, &alice),
        Err(LifecycleError::WrongStatus { .. })
    ));
}

#[test]
fn actors_are_checked() {
    assert_eq!(Actor::new("  "), Err(ActorError::Empty));
    assert_eq!(Actor::new(""), Err(ActorError::Empty));
    assert!(matches!(
        Actor::new(&"x".repeat(65)),
        Err(ActorError::TooLong(_))
    ));
    assert!(Actor::new(&"审".repeat(64)).is_ok());
    assert!(matches!(Actor::new("a\u{0}b"), Err(ActorError::Control(_))));
    assert_eq!(actor(" 张三 ").as_str(), "张三");
    assert_eq!("bob".parse::<Actor>().unwrap(), actor("bob"));
}

#[test]
fn sales_and_service() {
    for s in PlanStatus::ALL {
        assert_eq!(accepts_new_subscriptions(s), s == PlanStatus::Active, "{s}");
        assert_eq!(
            serves_existing(s),
            matches!(s, PlanStatus::Active | PlanStatus::Retired),
            "{s}"
        );
    }
}

#[test]
fn editing() {
    assert_eq!(edit(PlanStatus::Draft), Ok(EditOutcome::InPlace));
    for s in [
        PlanStatus::Approved,
        PlanStatus::Active,
        PlanStatus::Retired,
    ] {
        assert_eq!(edit(s), Ok(EditOutcome::NewDraftVersion), "{s}");
    }
    let e = edit(PlanStatus::PendingApproval).unwrap_err();
    assert_eq!(e, LifecycleError::EditPending);
    assert!(e.to_string().contains("reject"), "{e}");
}

#[test]
fn names_round_trip() {
    for s in PlanStatus::ALL {
        assert_eq!(s.as_str().parse::<PlanStatus>().unwrap(), s);
        assert_eq!(s.to_string(), s.as_str());
    }
    assert_eq!(PlanStatus::PendingApproval.as_str(), "pending_approval");
    assert!("Draft".parse::<PlanStatus>().is_err());
    for a in PlanAction::ALL {
        assert_eq!(a.as_str().parse::<PlanAction>().unwrap(), a);
    }
    assert!("delete".parse::<PlanAction>().is_err());
}
