//! Just enough of the W3C WebDriver protocol to drive headless Chromium
//! through chromedriver: start it, open a page, run a script, take a
//! screenshot.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http;

/// How long one WebDriver command may take (a browser starting on a
/// loaded 2-core machine takes seconds).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

/// The first of `names` found in `PATH`.
pub fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// A chromedriver process and one headless Chromium session in it; both
/// end when this is dropped.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

impl Browser {
    /// Starts `chromedriver` and a headless `chromium` of the given
    /// window size.
    pub fn start(chromedriver: &Path, chromium: &Path, width: u32, height: u32) -> Self {
        let (driver, addr) = start_driver(chromedriver);
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
        };
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox", // the tests may run as root
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                ],
            },
        }}});
        let created = browser.command("POST", "/session", Some(&capabilities));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        browser
    }

    /// Runs one WebDriver command; panics on an error, with the driver's
    /// message.
    fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let answer = http::request(self.addr, method, path, body, COMMAND_TIMEOUT)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let value = answer.json()["value"].clone();
        assert_eq!(
            answer.status, 200,
            "WebDriver {method} {path} failed: {value}"
        );
        value
    }

    fn session_command(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.command(method, &path, body)
    }

    /// Opens `url` and waits for it to load.
    pub fn open(&self, url: &str) {
        self.session_command("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Runs `script` (a function body; `return` gives its value) in the page.
    pub fn run(&self, script: &str) -> Value {
        let body = json!({ "script": script, "args": [] });
        self.session_command("POST", "/execute/sync", Some(&body))
    }

    /// A PNG of what the page shows now.
    pub fn screenshot(&self) -> Vec<u8> {
        let encoded = self.session_command("GET", "/screenshot", None);
        let encoded = encoded.as_str().expect("a base64 string");
        base64_decode(encoded).expect("valid base64")
    }
}

/// Starts chromedriver on a free port and waits until it is ready. The port
/// is the OS's pick, handed over: if another process takes it meanwhile,
/// chromedriver exits and is started again on another.
fn start_driver(chromedriver: &Path) -> (Child, SocketAddr) {
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    'start: for _attempt in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        loop {
            let ready = http::request(addr, "GET", "/status", None, COMMAND_TIMEOUT)
                .map(|a| a.json()["value"]["ready"] == json!(true));
            if ready == Ok(true) {
                return (driver, addr);
            }
            if let Ok(Some(exit)) = driver.try_wait() {
                eprintln!("chromedriver on port {port} exited ({exit}): starting it again");
                continue 'start;
            }
            if Instant::now() > deadline {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("chromedriver not ready on {addr}: {ready:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("chromedriver exited three times on start");
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            // Closes Chromium; best effort, the driver goes next anyway.
            let _ = http::request(self.addr, "DELETE", &path, None, COMMAND_TIMEOUT);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (with padding), as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for quad in bytes.chunks(4) {
        let digits = quad.iter().take_while(|&&c| c != b'=').count();
        let mut bits = 0u32;
        for (i, &c) in quad[..digits].iter().enumerate() {
            bits |= value(c)? << (18 - 6 * i);
        }
        out.extend_from_slice(&bits.to_be_bytes()[1..digits.max(1)]);
    }
    Some(out)
}

#[test]
fn base64_decodes_with_and_without_padding() {
    assert_eq!(base64_decode("TWFu").as_deref(), Some(&b"Man"[..]));
    assert_eq!(base64_decode("TWE=").as_deref(), Some(&b"Ma"[..]));
    assert_eq!(base64_decode("TQ==").as_deref(), Some(&b"M"[..]));
}
