//! TLS for the tests: self-signed certificates made with the `openssl` CLI
//! (the tool an operator uses, so docs/operations.md shows the same
//! command), and a blocking rustls client that accepts any certificate and
//! reports which one the server presented.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// A blocking TLS connection over TCP.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Writes a self-signed EC P-256 certificate for `127.0.0.1`/`localhost`
/// with subject `CN=<cn>` to `<dir>/<name>.crt` and its key to
/// `<dir>/<name>.key`; returns both paths.
pub fn self_signed(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
        ])
        .arg(format!("/CN={cn}"))
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (tests/run installs it)");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// The DER of the first certificate in a PEM file.
pub fn cert_der(pem: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(pem)
        .and_then(|mut it| it.next().expect("a certificate in the file"))
        .unwrap_or_else(|e| panic!("read {}: {e}", pem.display()))
        .as_ref()
        .to_vec()
}

/// Connects to `addr` and completes a TLS handshake (ALPN `alpn` when
/// non-empty); returns the stream and the DER of the certificate the server
/// presented.
pub fn connect(addr: SocketAddr, alpn: &[&[u8]]) -> Result<(TlsStream, Vec<u8>), String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from(addr.ip().to_string()).map_err(|e| e.to_string())?;
    let conn = ClientConnection::new(Arc::new(cfg), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    tcp.set_write_timeout(Some(Duration::from_secs(5))).ok();
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
    }
    let der = s
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or("no server certificate")?;
    Ok((s, der))
}

/// Sends `request` and reads until the server closes; a close without
/// close_notify still returns what arrived.
pub fn exchange(s: &mut TlsStream, request: &[u8]) -> Result<Vec<u8>, String> {
    s.write_all(request).map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Ok(_) => Ok(buf),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => Ok(buf),
        Err(e) => Err(format!("read: {e}")),
    }
}

/// Trusts any certificate (the tests compare the one presented with the
/// file instead), but checks the handshake signatures.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// SIP over one TLS connection (RFC 3261 §26): messages framed by
/// Content-Length as on TCP, `Via: SIP/2.0/TLS`.
pub struct SipTlsClient {
    pub stream: TlsStream,
    /// The DER of the certificate the gateway presented.
    pub server_cert: Vec<u8>,
    buf: Vec<u8>,
}

impl SipTlsClient {
    pub fn connect(addr: SocketAddr) -> Result<SipTlsClient, String> {
        let (stream, server_cert) = connect(addr, &[])?;
        Ok(SipTlsClient {
            stream,
            server_cert,
            buf: Vec::new(),
        })
    }

    /// Our address as the gateway sees it (Via sent-by, Contact).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.sock.local_addr().expect("local addr")
    }

    /// Sends `msg`, turning a rendered UDP Via into a TLS one.
    pub fn send(&mut self, msg: &str) {
        let msg = msg.replacen("Via: SIP/2.0/UDP ", "Via: SIP/2.0/TLS ", 1);
        self.stream
            .write_all(msg.as_bytes())
            .and_then(|()| self.stream.flush())
            .expect("write SIP over TLS");
    }

    /// The next whole SIP message within `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Option<hotline_testpeer::sip::SipMessage> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(msg) = self.pop() {
                return Some(msg);
            }
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            self.stream
                .sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok();
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return None,
            }
        }
    }

    /// A response with `status` to `method` within `timeout`, skipping others.
    pub fn recv_status(
        &mut self,
        method: &str,
        status: u16,
        timeout: Duration,
    ) -> Option<hotline_testpeer::sip::SipMessage> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            let m = self.recv(left)?;
            if m.status() == Some(status) && m.cseq_method() == Some(method) {
                return Some(m);
            }
        }
    }

    fn pop(&mut self) -> Option<hotline_testpeer::sip::SipMessage> {
        let start = self
            .buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        self.buf.drain(..start);
        let head_end = self.buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                matches!(k.trim(), "content-length" | "l").then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0usize);
        if self.buf.len() < head_end + len {
            return None;
        }
        let msg: Vec<u8> = self.buf.drain(..head_end + len).collect();
        hotline_testpeer::sip::SipMessage::parse(&msg)
    }
}
