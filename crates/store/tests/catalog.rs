#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fixtures::{actor, plan_toml, tenant};
use toll_catalog::lifecycle::{PlanAction, PlanStatus};
use toll_store::StoreError;

#[tokio::test]
async fn maker_checker_lifecycle_is_enforced_and_recorded() {
    for e in common::engines().await {
        let s = &e.store;
        let t = tenant(s, "acme").await;
        let (alice, bob) = (actor("alice"), actor("bob"));
        let v = s
            .create_plan(t.id, &plan_toml("p1", "100"), &alice)
            .await
            .unwrap();
        assert_eq!((v.version, v.status), (1, PlanStatus::Draft), "{}", e.name);

        // An unapproved plan cannot be activated.
        let err = s
            .plan_action(t.id, "p1", None, PlanAction::Activate, &bob, "")
            .await;
        assert!(
            matches!(err, Err(StoreError::Refused(_))),
            "{}: {err:?}",
            e.name
        );
        s.plan_action(t.id, "p1", None, PlanAction::Submit, &alice, "ready")
            .await
            .unwrap();
        // The author cannot approve their own plan.
        let err = s
            .plan_action(t.id, "p1", None, PlanAction::Approve, &alice, "")
            .await;
        assert!(matches!(err, Err(StoreError::Refused(_))), "{}", e.name);
        // Pending approval cannot be edited.
        let err = s
            .edit_plan(t.id, "p1", &plan_toml("p1", "101"), &alice)
            .await;
        assert!(matches!(err, Err(StoreError::Refused(_))), "{}", e.name);
        s.plan_action(t.id, "p1", None, PlanAction::Reject, &bob, "fee too low")
            .await
            .unwrap();
        // A draft is edited in place.
        let v = s
            .edit_plan(t.id, "p1", &plan_toml("p1", "120"), &alice)
            .await
            .unwrap();
        assert_eq!((v.version, v.status), (1, PlanStatus::Draft));
        s.plan_action(t.id, "p1", None, PlanAction::Submit, &alice, "")
            .await
            .unwrap();
        s.plan_action(t.id, "p1", None, PlanAction::Approve, &bob, "ok")
            .await
            .unwrap();
        let v = s
            .plan_action(t.id, "p1", None, PlanAction::Activate, &bob, "")
            .await
            .unwrap();
        assert_eq!(v.status, PlanStatus::Active);

        // Editing an active plan makes a new draft version; version 1 stays active.
        let v2 = s
            .edit_plan(t.id, "p1", &plan_toml("p1", "130"), &bob)
            .await
            .unwrap();
        assert_eq!((v2.version, v2.status), (2, PlanStatus::Draft));
        let v1 = s.plan_version(t.id, "p1", Some(1)).await.unwrap();
        assert_eq!(v1.status, PlanStatus::Active);
        assert!(v1.definition.contains("\"120\""));
        // bob authored version 2: alice checks it; activating it retires version 1.
        s.plan_action(t.id, "p1", Some(2), PlanAction::Submit, &bob, "")
            .await
            .unwrap();
        let err = s
            .plan_action(t.id, "p1", Some(2), PlanAction::Approve, &bob, "")
            .await;
        assert!(matches!(err, Err(StoreError::Refused(_))));
        s.plan_action(t.id, "p1", Some(2), PlanAction::Approve, &alice, "")
            .await
            .unwrap();
        s.plan_action(t.id, "p1", Some(2), PlanAction::Activate, &alice, "")
            .await
            .unwrap();
        let v1 = s.plan_version(t.id, "p1", Some(1)).await.unwrap();
        assert_eq!(v1.status, PlanStatus::Retired);

        let history = s.plan_history(t.id, "p1").await.unwrap();
        let steps: Vec<(i64, &str, &str, &str)> = history
            .iter()
            .map(|h| {
                (
                    h.version,
                    h.action.as_str(),
                    h.to.as_str(),
                    h.actor.as_str(),
                )
            })
            .collect();
        assert_eq!(
            steps,
            vec![
                (1, "create", "draft", "alice"),
                (1, "submit", "pending_approval", "alice"),
                (1, "reject", "draft", "bob"),
                (1, "edit", "draft", "alice"),
                (1, "submit", "pending_approval", "alice"),
                (1, "approve", "approved", "bob"),
                (1, "activate", "active", "bob"),
                (2, "create", "draft", "bob"),
                (2, "submit", "pending_approval", "bob"),
                (2, "approve", "approved", "alice"),
                (1, "retire", "retired", "alice"),
                (2, "activate", "active", "alice"),
            ],
            "{}",
            e.name
        );
        assert_eq!(history[2].comment, "fee too low");
        assert!(history.iter().all(|h| h.at_ms > 0));
    }
}

#[tokio::test]
async fn invalid_definitions_are_refused_with_the_field() {
    for e in common::engines().await {
        let s = &e.store;
        let t = tenant(s, "acme").await;
        let bad = plan_toml("p1", "100").replace("quantity = 100", "quantity = -5");
        match s.create_plan(t.id, &bad, &actor("alice")).await {
            Err(StoreError::Invalid { field, reason }) => {
                assert_eq!(field, "definition");
                assert!(reason.contains("allowances[0]"), "{reason}");
            }
            other => panic!("{}: {other:?}", e.name),
        }
        s.create_plan(t.id, &plan_toml("p1", "100"), &actor("alice"))
            .await
            .unwrap();
        assert!(matches!(
            s.create_plan(t.id, &plan_toml("p1", "100"), &actor("alice"))
                .await,
            Err(StoreError::Conflict { .. })
        ));
    }
}
