//! Issue 13, finding 3: servers that echo credentials in their error bodies and URLs.
//!
//! A tiny HTTP server on loopback plays S3 (a 403 whose body names the access key id and the
//! session token, raw and percent-encoded) or Azure (a 403 that prints the request URL, whose
//! SAS `sig=` object_store re-encoded). Listing succeeds, so the pre-flight passes and the copy
//! itself fails: the failure text then reaches the WARN line, the step error and `state.db`.
//! None of them may hold a credential in any form.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Output;

use assert_cmd::Command;
use base64::Engine as _;
use util::{Workspace, stderr, stdout};

const KEY_ID: &str = "AKIAECHOTEST12345678";
const SECRET: &str = "echo/Secret+Key=abcdefghijklmnopqrst";
const TOKEN: &str = "FwoGZXIvYXdz/Echo+Session=Token0123456789";
const SIG: &str = "Ab+cd/ef=Sig0123456789xyz";
const SAS: &str = "sv=2022-11-02&ss=b&srt=co&sp=rwdlac&se=2030-01-01T00%3A00%3A00Z&sig=Ab%2Bcd%2Fef%3DSig0123456789xyz";

/// `application/x-www-form-urlencoded` escaping, as URL query values are written.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The reverse of [`form_encode`] (`+` is a space, `%XX` a byte).
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if bytes.len() >= i + 3 => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `%2B` as `%2b`, the rest unchanged: how some servers re-print a URL.
fn lower_hex_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            out.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
        }
    }
    out
}

/// One request as the echo server saw it.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let request = Request {
        method,
        target,
        headers,
    };
    let length: usize = request.header("content-length").parse().unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(request)
}

fn respond(mut stream: TcpStream, status: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

/// Start a server answering each request with `answer`; returns its base URL.
fn serve(answer: fn(&Request) -> (&'static str, String)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                if let Some(request) = read_request(&stream) {
                    let (status, body) = answer(&request);
                    let body = if request.method == "HEAD" {
                        String::new()
                    } else {
                        body
                    };
                    respond(stream, status, &body);
                }
            });
        }
    });
    format!("http://{addr}")
}

/// S3: listings are empty, reads are 404, writes are refused with the credentials echoed.
fn s3_answer(request: &Request) -> (&'static str, String) {
    if request.method == "GET" && request.target.contains("list-type=2") {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>bucket</Name><Prefix>p/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>";
        return ("200 OK", body.to_owned());
    }
    if matches!(request.method.as_str(), "GET" | "HEAD") {
        return (
            "404 Not Found",
            "<Error><Code>NoSuchKey</Code></Error>".to_owned(),
        );
    }
    let key_id = request
        .header("authorization")
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let token = request.header("x-amz-security-token").to_owned();
    let encoded = form_encode(&token);
    let body = format!(
        "<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message><AWSAccessKeyId>{key_id}</AWSAccessKeyId><Token>{token}</Token><RequestURL>{}?X-Amz-Security-Token={encoded}&amp;X-Amz-Credential={key_id}</RequestURL></Error>",
        request.target
    );
    ("403 Forbidden", body)
}

/// Azure: listings are empty, reads are 404, writes are refused printing the request URL
/// (with the SAS object_store appended) as given, with lower-case escapes, and decoded.
fn azure_answer(request: &Request) -> (&'static str, String) {
    if request.method == "GET" && request.target.contains("comp=list") {
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ContainerName=\"container\"><Blobs></Blobs><NextMarker /></EnumerationResults>";
        return ("200 OK", body.to_owned());
    }
    if matches!(request.method.as_str(), "GET" | "HEAD") {
        return (
            "404 Not Found",
            "<Error><Code>BlobNotFound</Code></Error>".to_owned(),
        );
    }
    let url = &request.target;
    let decoded = form_decode(url);
    let body = format!(
        "<Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request. URL: {url} lower: {} decoded: {decoded}</Message></Error>",
        lower_hex_escapes(url)
    );
    ("403 Forbidden", body)
}

fn plan(store: &str) -> String {
    format!(
        r#"apiVersion: relocate/v1
kind: MigrationPlan
name: echo
regions:
  moscow: {{ jurisdiction: RU }}
  zurich: {{ jurisdiction: CH }}
source: moscow
target: zurich
stores:
  src: {{ region: moscow, url: "file://./src/" }}
  dst:
    region: zurich
{store}
workloads:
  data:
    objects: {{ from: src, to: dst }}
stages:
  - name: seed
    steps: [ {{ copy: data }}, {{ verify: data }} ]
"#
    )
}

fn run(ws: &Workspace) -> Output {
    Command::cargo_bin("relocate")
        .expect("binary")
        .current_dir(ws.path())
        .env("ECHO_KEY_ID", KEY_ID)
        .env("ECHO_SECRET", SECRET)
        .env("ECHO_TOKEN", TOKEN)
        .env("ECHO_SAS", SAS)
        .args(["run", "plan.yaml", "--state-dir", "state"])
        .output()
        .expect("run relocate")
}

/// Every form a credential may be printed in.
fn forms(secret: &str) -> Vec<String> {
    let form = form_encode(secret);
    vec![
        secret.to_owned(),
        form.clone(),
        lower_hex_escapes(&form),
        base64::engine::general_purpose::STANDARD.encode(secret),
    ]
}

/// Everything the run left behind that a person or a tool may read.
fn everything_written(ws: &Workspace, out: &Output) -> String {
    let mut text = format!("{}\n{}", stdout(out), stderr(out));
    for (path, bytes) in util::tree(&ws.join("state")) {
        text.push_str(&format!(
            "\n--- {path}\n{}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    text
}

fn assert_no_credential(ws: &Workspace, out: &Output, secrets: &[&str]) {
    assert!(!out.status.success(), "the copy must fail: {}", stderr(out));
    let text = everything_written(ws, out);
    assert!(
        text.contains("403"),
        "the server's refusal is reported: {text}"
    );
    let db = std::fs::read(ws.join("state/state.db")).expect("state.db");
    assert!(!db.is_empty());
    for secret in secrets {
        for form in forms(secret) {
            assert!(
                !text.contains(&form),
                "`{form}` (a form of a credential) was written:\n{text}"
            );
        }
    }
}

#[test]
fn finding_03_s3_errors_echoing_key_id_and_session_token_are_redacted() {
    let endpoint = serve(s3_answer);
    let ws = Workspace::new();
    ws.write("src/a.txt", b"hello");
    let store = format!(
        r#"    url: "s3://bucket/p/"
    options:
      endpoint: "{endpoint}"
      allow_http: "true"
      region: "us-east-1"
      access_key_id: "${{env:ECHO_KEY_ID}}"
      secret_access_key: "${{env:ECHO_SECRET}}"
      session_token: "${{env:ECHO_TOKEN}}""#
    );
    ws.write("plan.yaml", plan(&store));
    let out = run(&ws);
    assert_no_credential(&ws, &out, &[KEY_ID, SECRET, TOKEN]);
    let text = everything_written(&ws, &out);
    assert!(text.contains("InvalidAccessKeyId"), "{text}");
}

#[test]
fn finding_03_literal_access_key_id_is_redacted_too() {
    let endpoint = serve(s3_answer);
    let ws = Workspace::new();
    ws.write("src/a.txt", b"hello");
    let store = format!(
        r#"    url: "s3://bucket/p/"
    options:
      endpoint: "{endpoint}"
      allow_http: "true"
      access_key_id: "{KEY_ID}"
      secret_access_key: "${{env:ECHO_SECRET}}"
      session_token: "${{env:ECHO_TOKEN}}""#
    );
    ws.write("plan.yaml", plan(&store));
    let out = run(&ws);
    assert_no_credential(&ws, &out, &[KEY_ID, SECRET, TOKEN]);
}

#[test]
fn finding_03_azure_errors_echoing_a_re_encoded_sas_are_redacted() {
    let endpoint = serve(azure_answer);
    let ws = Workspace::new();
    ws.write("src/a.txt", b"hello");
    let store = format!(
        r#"    url: "az://container/p/"
    options:
      account_name: "devacct"
      endpoint: "{endpoint}/devacct"
      allow_http: "true"
      sas_key: "${{env:ECHO_SAS}}""#
    );
    ws.write("plan.yaml", plan(&store));
    let out = run(&ws);
    assert_no_credential(&ws, &out, &[SIG, SAS]);
    let text = everything_written(&ws, &out);
    assert!(text.contains("AuthenticationFailed"), "{text}");
}
