#![allow(clippy::unwrap_used, clippy::expect_used)]
//! PostgreSQL becomes unreachable in the middle of ingestion: the batch is retried, then
//! dead-lettered to disk; once the database is back, the letter is replayed and nothing is lost
//! or charged twice. The database is reached through a TCP proxy the test can cut.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use toll_core::{Currency, Micros};
use toll_ingest::Cleansing;
use toll_ingest::pipeline::deadletter::{self, DeadLetter};
use toll_ingest::pipeline::formats::{Format, ReaderSpec};
use toll_ingest::pipeline::rating::{DefaultRate, Payer, RatingContext};
use toll_ingest::pipeline::{Item, Origin, Pipeline, PipelineConfig, RetryPolicy};
use toll_store::Store;
use toll_store::accounts::AccountMode;
use toll_store::charging::Charger;

/// A TCP proxy to the database that can be cut (every connection dropped, new ones refused)
/// and restored.
struct Proxy {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (Arc::clone(&up), Arc::clone(&conns));
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().await.push(h);
            }
        });
        Proxy { addr, up, conns }
    }

    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for h in self.conns.lock().await.drain(..) {
            h.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn row(k: usize, start: &str) -> String {
    format!(
        r#""","13800138000","01088886666","from-internal","""x"" <13800138000>","PJSIP/a-{k}","PJSIP/trunk-{k}","Dial","PJSIP/x@trunk","{start}","{start}","{start}",60,60,"ANSWERED","BILLING","1795000000.{k}","""#
    )
}

fn batch(range: std::ops::Range<usize>, spec: &mut ReaderSpec) -> Vec<Item> {
    let text: String = range
        .map(|k| row(k, "2026-11-23 10:00:00") + "\n")
        .collect();
    spec.open(Cursor::new(text.into_bytes()), "pbx")
        .unwrap()
        .map(Item::new)
        .collect()
}

#[tokio::test]
async fn a_batch_the_database_cannot_take_is_dead_lettered_and_replayed_without_loss() {
    let Ok(url) = std::env::var("TOLL_TEST_DATABASE_URL") else {
        eprintln!("TOLL_TEST_DATABASE_URL not set: PostgreSQL outage test skipped");
        return;
    };
    // postgres://user@host:port/db → proxy in place of host:port.
    let after_at = url.rsplit_once('@').map_or(url.as_str(), |(_, r)| r);
    let hostport = after_at.split('/').next().unwrap().to_string();
    let proxy = Proxy::start(hostport.clone()).await;
    let proxied = url.replacen(&hostport, &proxy.addr.to_string(), 1);
    let schema = format!(
        "toll_test_{}_{}_outage",
        std::process::id(),
        jiff::Timestamp::now().as_millisecond()
    );
    let s = Store::connect_postgres_schema(&proxied, &schema)
        .await
        .unwrap();
    s.migrate().await.unwrap();
    let t = s
        .create_tenant("acme", "Acme", Currency::CNY, "Asia/Shanghai")
        .await
        .unwrap();
    s.create_customer(t.id, "c", "x").await.unwrap();
    s.create_account(t.id, "c", "a1", AccountMode::Unlimited)
        .await
        .unwrap();
    s.add_subscriber(t.id, "a1", "13800138000").await.unwrap();

    // No tariff: a default rate of 0.10 a minute prices every call.
    let config = PipelineConfig {
        cleansing: Cleansing::default(),
        rating: RatingContext {
            tariff_tenant: "acme".into(),
            category: "call".into(),
            default_rate: "voice=0.10".parse::<DefaultRate>().unwrap(),
            payer: Payer::Caller,
        },
        retry: RetryPolicy {
            retries: 3,
            first_backoff: Duration::from_millis(20),
        },
    };
    let p = Pipeline::new(Charger::new(s.clone(), t.clone()).unwrap(), None, config);
    let mut spec = ReaderSpec::new(Format::Asterisk, "Asia/Shanghai");
    let origin = Origin {
        reader: spec.to_json(),
        source: "pbx".into(),
        import_id: None,
    };

    let first = p.process(batch(0..100, &mut spec), &origin).await.unwrap();
    assert_eq!(first.charged, 100);

    proxy.cut().await;
    let failed = p
        .process(batch(100..250, &mut spec), &origin)
        .await
        .expect_err("the database is unreachable");
    assert_eq!(failed.attempts, 4, "three retries after the first attempt");
    assert_eq!(failed.items.len(), 150);
    assert_eq!(p.counters().retries.load(Ordering::Relaxed), 3);
    let dir = tempfile::tempdir().unwrap();
    let letter = DeadLetter::new(
        "acme",
        &origin,
        failed.error.to_string(),
        failed.attempts,
        &failed.items,
    );
    let path = letter.write(dir.path()).unwrap();
    assert_eq!(deadletter::list(dir.path()).unwrap(), vec![path.clone()]);

    proxy.restore();
    let back = DeadLetter::read(&path).unwrap();
    assert_eq!(back, letter);
    let replayed = p.process(back.items(), &back.origin()).await.unwrap();
    assert_eq!((replayed.charged, replayed.duplicate), (150, 0));
    // A letter replayed twice charges nothing twice.
    let twice = p.process(back.items(), &back.origin()).await.unwrap();
    assert_eq!((twice.charged, twice.duplicate), (0, 150));

    let (n, total) = s.cdr_totals(t.id).await.unwrap();
    assert_eq!((n, total), (250, "25".parse::<Micros>().unwrap()));
    assert_eq!(
        s.account(t.id, "a1").await.unwrap().balance,
        "-25".parse::<Micros>().unwrap()
    );
    assert!(s.verify_ledger(t.id).await.unwrap().is_intact());
    s.close().await;
}
