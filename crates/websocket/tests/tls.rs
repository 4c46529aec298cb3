//! `wss://`: certificates are checked (an untrusted one fails clearly), and a custom rustls
//! configuration that trusts it connects.

mod common;

use pipecat_websocket::AudioBuilder;
use std::sync::Arc;

use common::{Events, Liveness, ProbeSource, handshake};
use pipecat_core::{ConnectionParams, Transport, TransportError};
use pipecat_websocket::WebSocketParams;
use pipecat_websocket::proto::frame::Frame as Kind;
use pipecat_websocket::rustls;
use pipecat_websocket::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A TLS WebSocket server with a fresh self-signed certificate for `localhost`.
struct TlsServer {
    port: u16,
    cert: CertificateDer<'static>,
    conns: mpsc::UnboundedReceiver<
        common::ServerConn<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
    >,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tls_server() -> TlsServer {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, conns) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                if let Some(conn) = handshake(tls, false).await {
                    let _ = tx.send(conn);
                }
            });
        }
    });
    TlsServer { port, cert, conns, task }
}

impl TlsServer {
    fn params(&self) -> ConnectionParams {
        WebSocketParams::new(format!("wss://localhost:{}/ws-client", self.port))
            .with_token("tls-secret")
            .into()
    }
}

#[tokio::test]
async fn untrusted_certificate_fails_with_a_clear_error() {
    let server = tls_server().await;
    let transport =
        common::builder().audio_source(ProbeSource(Arc::new(Liveness::default()))).build().unwrap();
    let err = transport.connect(server.params(), Events::new().sink).await.unwrap_err();
    assert!(matches!(err, TransportError::ConnectFailed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("TLS handshake"), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert!(!text.contains("tls-secret"), "token leaked: {text}");
}

#[tokio::test]
async fn a_custom_tls_config_that_trusts_the_certificate_connects() {
    let mut server = tls_server().await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let transport = common::builder()
        .audio_source(ProbeSource(Arc::new(Liveness::default())))
        .tls_config(Arc::new(config))
        .build()
        .unwrap();
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let mut conn = tokio::time::timeout(common::WAIT, server.conns.recv()).await.unwrap().unwrap();
    assert_eq!(conn.uri, "/ws-client?token=tls-secret");
    transport.send_message("{\"over\":\"tls\"}".into()).await.unwrap();
    assert!(matches!(conn.recv_frame().await, Kind::Message(m) if m.data.contains("tls")));
    transport.disconnect().await.unwrap();
}
