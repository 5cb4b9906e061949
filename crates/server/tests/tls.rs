#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `serve_tls`: HTTPS with a certificate from PEM files (rustls). A client that trusts the
//! test certificate gets answers over TLS; a login sets a `Secure` session cookie; plain HTTP
//! on the same port gets no answer.

#[path = "../../store/tests/common/mod.rs"]
mod common;
mod common_server;

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use toll_server::{AppState, ServerConfig, TlsFiles};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

async fn https(port: u16, request: &str) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(format!("{DATA}/test-cert.pem")).unwrap();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn https_answers_and_session_cookies_are_secure() {
    let e = common::engines().await.remove(0);
    common_server::people(&e.store).await;
    let state = AppState::new(
        e.store.clone(),
        common_server::settings(),
        ServerConfig {
            secure_cookies: true,
            ..ServerConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = oneshot::channel::<()>();
    let tls = TlsFiles {
        cert: format!("{DATA}/test-cert.pem").into(),
        key: format!("{DATA}/test-key.pem").into(),
    };
    let task = tokio::spawn(async move {
        toll_server::serve_tls(
            listener,
            &tls,
            state,
            async move {
                let _ = stopped.await;
            },
            std::time::Duration::from_secs(1),
        )
        .await
    });

    let health = https(
        port,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok\n"), "{health}");

    let body = format!(
        r#"{{"login":"operator","password":"{}"}}"#,
        common_server::PASSWORD
    );
    let login = https(
        port,
        &format!(
            "POST /api/v1/session HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    let cookie = login
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    // Plain HTTP to the TLS port: no HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(3), tcp.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
