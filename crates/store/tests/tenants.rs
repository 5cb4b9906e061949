#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use toll_core::Currency;
use toll_store::StoreError;

#[tokio::test]
async fn tenants_are_created_once_and_found_by_slug() {
    for e in common::engines().await {
        let s = &e.store;
        let t = s
            .create_tenant("acme", "Acme 电信", Currency::CNY, "Asia/Shanghai")
            .await
            .unwrap();
        let found = s.tenant("acme").await.unwrap();
        assert_eq!(found, t, "{}", e.name);
        assert!(matches!(
            s.create_tenant("acme", "again", Currency::CNY, "Asia/Shanghai")
                .await,
            Err(StoreError::Conflict { .. })
        ));
        assert!(matches!(
            s.create_tenant("zone", "x", Currency::CNY, "Mars/Olympus")
                .await,
            Err(StoreError::Invalid { .. })
        ));
        assert!(matches!(
            s.tenant("nobody").await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.create_tenant("bad slug", "x", Currency::CNY, "Asia/Shanghai")
                .await,
            Err(StoreError::Invalid { .. })
        ));
    }
}
