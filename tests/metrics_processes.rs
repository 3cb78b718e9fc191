//! The `prometheus` example as an OS process: it serves the metrics of its
//! two nodes over HTTP on a port the OS chose, and a plain TCP GET of
//! `/metrics` shows messages handled, migrations both ways with their
//! freeze time, link bytes and both members, with nonzero values.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(60);

/// Kills the example when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The body of `GET /metrics` at `addr` (`host:port`), by hand.
fn scrape(addr: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no end of headers")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("answered {head:?}"));
    }
    Ok(body.to_owned())
}

/// The value of the first sample whose line starts with `series`.
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn the_prometheus_example_serves_the_nodes_metrics_over_http() {
    let mut child = Command::new(common::example_binary("prometheus"))
        .args(["--seconds", "120", "--actors", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the prometheus example");
    let stdout = child.stdout.take().expect("stdout");
    let _running = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    let line = lines
        .next()
        .expect("a first line")
        .expect("readable stdout");
    let addr = line
        .strip_prefix("metrics on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("expected the metrics address, got {line:?}"))
        .to_owned();
    // Keep reading its output, so that it never blocks on a full pipe; each
    // line says something happened (a move), worth a new scrape.
    let (happened, news) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = happened.send(line);
        }
    });

    // The example's actor type, tagged with its module path.
    let meter = r#"actor_type="prometheus::Meter""#;
    let wanted = [
        format!(r#"mobility_messages_handled_total{{node="a",{meter}}}"#),
        format!(r#"mobility_messages_handled_total{{node="b",{meter}}}"#),
        format!(r#"mobility_migrations_out_total{{node="a",{meter},outcome="success"}}"#),
        format!(r#"mobility_migrations_in_total{{node="b",{meter},outcome="success"}}"#),
        format!(r#"mobility_migration_freeze_seconds_count{{node="a",{meter}}}"#),
        r#"mobility_link_bytes_sent_total{node="a"}"#.to_owned(),
        r#"mobility_link_bytes_received_total{node="b"}"#.to_owned(),
    ];
    let deadline = Instant::now() + PATIENCE;
    let body = loop {
        let missing: Vec<&String> = match scrape(&addr) {
            Ok(body) => {
                let missing: Vec<&String> = wanted
                    .iter()
                    .filter(|series| value(&body, series).is_none_or(|v| v <= 0.0))
                    .collect();
                if missing.is_empty() {
                    break body;
                }
                missing
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "scraping {addr}: {e}");
                Vec::new()
            }
        };
        assert!(
            Instant::now() < deadline,
            "still zero or absent after {PATIENCE:?}: {missing:?}"
        );
        // Scrape again once the example reports its next move.
        let left = deadline.saturating_duration_since(Instant::now());
        news.recv_timeout(left)
            .unwrap_or_else(|e| panic!("no news from the example within {PATIENCE:?}: {e}"));
    };
    assert_eq!(
        value(&body, r#"mobility_cluster_members{node="a"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(
            &body,
            r#"mobility_link_refusals_total{node="a",reason="bad_handshake"}"#
        ),
        Some(0.0),
        "refusals are exported, per reason"
    );
}
