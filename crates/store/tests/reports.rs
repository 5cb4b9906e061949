#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The UI's read-only figures (`toll_store::reports`) on every engine: the SQL runs on both,
//! searches find what they should and treat `%` and `_` literally, tenants stay apart.

mod common;

use common::fixtures::{LINE, m, one_line, tenant};
use toll_store::accounts::AccountMode;
use toll_store::reports::CdrSearch;

#[tokio::test]
async fn account_list_lines_subscriptions_and_empty_day() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, sub) = one_line(s, "100").await;
        s.create_customer(t.id, "c_2", "李%四").await.unwrap();
        s.create_account(t.id, "c_2", "b2", AccountMode::Prepaid)
            .await
            .unwrap();
        s.add_subscriber(t.id, "b2", "13900139000").await.unwrap();
        let other = tenant(s, "other").await;

        let all = s.account_list(t.id, "", 0, 50).await.unwrap();
        let codes: Vec<&str> = all.iter().map(|a| a.code.as_str()).collect();
        assert_eq!(codes, ["a1", "b2"], "{}", e.name);
        let a1 = s.account(t.id, "a1").await.unwrap();
        assert_eq!(
            all[0].balance, a1.balance,
            "{}: the wallet's balance",
            e.name
        );
        assert_eq!(a1.balance, m("90"), "{}: 100 less the plan's fee", e.name);
        assert_eq!(all[0].lines, 1, "{}", e.name);
        assert_eq!(all[0].customer_name, "张三", "{}", e.name);

        let by_line = s.account_list(t.id, "1390013", 0, 50).await.unwrap();
        assert_eq!(by_line.len(), 1, "{}", e.name);
        assert_eq!(by_line[0].code, "b2", "{}", e.name);
        let literal = s.account_list(t.id, "%", 0, 50).await.unwrap();
        assert_eq!(literal.len(), 1, "{}: % is literal", e.name);
        let underscore = s.account_list(t.id, "c_", 0, 50).await.unwrap();
        assert_eq!(underscore.len(), 1, "{}: _ is literal", e.name);
        assert!(
            s.account_list(other.id, "", 0, 50)
                .await
                .unwrap()
                .is_empty()
        );

        let lines = s.account_line_rows(t.id, "a1").await.unwrap();
        assert_eq!(lines.len(), 1, "{}", e.name);
        assert_eq!(lines[0].number, LINE, "{}", e.name);
        assert_eq!(
            s.account_subscription_ids(t.id, "a1").await.unwrap(),
            [sub],
            "{}",
            e.name
        );

        let day = s.day_figures(t.id, 0, i64::MAX).await.unwrap();
        assert_eq!((day.calls, day.revenue), (0, m("0")), "{}", e.name);
        assert!(day.per_hour.is_empty(), "{}", e.name);
        assert_eq!(s.suspense_open_count(t.id).await.unwrap(), 0, "{}", e.name);
        let found = s
            .cdr_page(
                t.id,
                &CdrSearch {
                    from_ms: 0,
                    to_ms: i64::MAX,
                    number: Some(LINE.into()),
                    account: Some("a1".into()),
                    offset: 0,
                    limit: 10,
                },
            )
            .await
            .unwrap();
        assert!(found.is_empty(), "{}", e.name);
    }
}
