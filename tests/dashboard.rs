//! The dashboard (`Node::serve_dashboard`, feature `dashboard`): its JSON
//! follows an actor's mailbox and a migration, bind errors are clear, it
//! stops when dropped; and headless Chromium, driven through chromedriver,
//! sees the page show an actor's move live, and takes a screenshot that is
//! checked. Without Chromium the browser test says SKIPPED and passes.

mod common;
#[path = "dashboard/http.rs"]
mod http;
#[path = "dashboard/png.rs"]
mod png;
#[path = "dashboard/webdriver.rs"]
mod webdriver;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{poll_until, wait_for, PATIENCE};
use mobility::prelude::*;
use serde_json::{json, Value};
use webdriver::{find_program, Browser};

/// Opened (a permit added) by the test that keeps `Walker::hold` waiting.
static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);
/// Set while `Walker::hold` waits at the gate.
static HOLDING: AtomicBool = AtomicBool::new(false);

#[mobile]
#[derive(Default)]
pub struct Walker {
    pings: u64,
}

#[mobile]
impl Walker {
    /// Keeps the actor busy until the test opens `GATE`.
    pub async fn hold(&mut self) {
        HOLDING.store(true, Ordering::SeqCst);
        GATE.acquire().await.expect("the gate stays open").forget();
        HOLDING.store(false, Ordering::SeqCst);
    }

    pub fn ping(&mut self) -> u64 {
        self.pings += 1;
        self.pings
    }
}

/// Two members, `{prefix}-a` and `{prefix}-b`, of a cluster of their own,
/// once each sees both.
async fn cluster(prefix: &str) -> (Node, Node) {
    let member = |id: String| {
        Node::builder()
            .id(id)
            .cluster(format!("{prefix}-cluster"), "dashboard secret")
            .listen("127.0.0.1:0")
            .gossip_interval(Duration::from_millis(50))
    };
    let a = member(format!("{prefix}-a"))
        .start()
        .await
        .expect("a starts");
    let seed = a.listen_addr().expect("listens").to_string();
    let b = member(format!("{prefix}-b"))
        .join(&seed)
        .start()
        .await
        .expect("b joins");
    wait_for("both members to see each other", || {
        a.members().len() == 2 && b.members().len() == 2
    })
    .await;
    (a, b)
}

/// One blocking HTTP request, off the runtime's worker.
fn get(addr: SocketAddr, path: &str) -> Result<http::Answer, String> {
    tokio::task::block_in_place(|| http::request(addr, "GET", path, None, PATIENCE))
}

fn state(addr: SocketAddr) -> Result<Value, String> {
    let answer = get(addr, "/api/state")?;
    if answer.status != 200 {
        return Err(format!("status {}", answer.status));
    }
    Ok(answer.json())
}

/// The node `state` says hosts the actor named `name`.
fn lives_on<'a>(state: &'a Value, name: &str) -> Option<&'a str> {
    state["named"]
        .as_array()?
        .iter()
        .find(|n| n["name"] == name)?["node"]
        .as_str()
}

/// The actor `id` among the node's own, if there.
fn hosted(state: &Value, id: ActorId) -> Option<&Value> {
    state["actors"]
        .as_array()?
        .iter()
        .find(|a| a["id"] == id.to_string())
}

/// Polls `/api/state` until `check` holds for it.
async fn state_where(what: &str, addr: SocketAddr, check: impl Fn(&Value) -> bool) -> Value {
    poll_until(what, || {
        let answer = state(addr).and_then(|s| {
            if check(&s) {
                Ok(s)
            } else {
                Err(format!("state {s}"))
            }
        });
        async move { answer }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_endpoint_follows_the_mailbox_and_a_migration() {
    let (a, b) = cluster("state").await;
    // The page logs the events from when it is served on: the spawn comes
    // after (its event may be emitted before `spawn_named` returns).
    let dashboard = a.serve_dashboard("127.0.0.1:0").await.expect("serves");
    let walker = a
        .spawn_named("walker", Walker::default())
        .await
        .expect("spawn");
    let addr = dashboard.addr();
    assert_eq!(dashboard.url(), format!("http://{addr}/"));

    let page = get(addr, "/").expect("the page");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));
    assert!(page.text().contains("<title>mobility dashboard</title>"));
    assert!(
        page.text().contains("/api/state"),
        "the page polls the state"
    );
    assert_eq!(get(addr, "/no-such-page").expect("an answer").status, 404);

    // Before: on a, with its type and name, among a's own actors, and its
    // spawn in the log (which a task of the dashboard collects: it may come
    // a moment after the actor shows).
    let spawned = |e: &Value| {
        e["kind"] == "spawned"
            && e["actor"] == walker.id().to_string()
            && e["name"] == "walker"
            && e["to"] == a.id().as_str()
    };
    let before = state_where("walker on a, hosted by a, its spawn logged", addr, |s| {
        lives_on(s, "walker") == Some(a.id().as_str())
            && hosted(s, walker.id()).is_some()
            && s["events"]
                .as_array()
                .is_some_and(|events| events.iter().any(spawned))
    })
    .await;
    assert_eq!(before["node"], a.id().as_str());
    let members: Vec<&str> = before["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(members, [a.id().as_str(), b.id().as_str()]);
    let info = hosted(&before, walker.id()).expect("hosted");
    assert_eq!(info["type_tag"], <Walker as Actor>::TYPE_TAG);
    assert_eq!(info["version"], <Walker as Actor>::VERSION);
    assert_eq!(info["name"], "walker");
    assert!(info["rust_type"]
        .as_str()
        .is_some_and(|t| t.ends_with("Walker")));
    let events = before["events"].as_array().expect("events");
    assert!(events.iter().any(spawned));
    assert!(events.iter().all(|e| e["kind"] != "departed"));

    // Its mailbox depth: three pings wait while it is held.
    let held = tokio::spawn({
        let walker = walker.clone();
        async move { walker.hold().await }
    });
    wait_for("walker to be held", || HOLDING.load(Ordering::SeqCst)).await;
    for _ in 0..3 {
        walker.tell().ping().expect("queued");
    }
    state_where("a mailbox depth of 3", addr, |s| {
        hosted(s, walker.id()).is_some_and(|w| w["mailbox_depth"] == 3)
    })
    .await;
    GATE.add_permits(1);
    held.await.expect("joined").expect("held and released");
    assert_eq!(walker.ping().await.expect("a ping"), 4);
    state_where("an empty mailbox, 5 handled", addr, |s| {
        hosted(s, walker.id())
            .is_some_and(|w| w["mailbox_depth"] == 0 && w["messages_handled"] == 5)
    })
    .await;

    // The move: the page's data says where it went, and how long it froze.
    let report = a
        .migrate(&walker, b.id().clone())
        .await
        .expect("moves to b");
    let after = state_where("walker on b, gone from a, departed", addr, |s| {
        lives_on(s, "walker") == Some(b.id().as_str())
            && hosted(s, walker.id()).is_none()
            && s["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["kind"] == "departed"))
    })
    .await;
    let departed = after["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "departed")
        .expect("departed");
    assert_eq!(departed["actor"], walker.id().to_string());
    assert_eq!(departed["from"], a.id().as_str());
    assert_eq!(departed["to"], b.id().as_str());
    assert_eq!(
        departed["freeze_us"],
        json!(report.freeze.as_micros() as u64)
    );
    assert_eq!(after["events_missed"], 0);

    // Dropped, it stops serving.
    drop(dashboard);
    poll_until("the dashboard to stop serving", || {
        let answer = get(addr, "/api/state");
        async move {
            match answer {
                Err(_) => Ok(()),
                Ok(a) => Err(format!("still answers {}", a.status)),
            }
        }
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn an_address_it_cannot_listen_on_is_a_clear_error() {
    let node = Node::builder()
        .id("dashboard-bind")
        .start()
        .await
        .expect("starts");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let taken = taken.local_addr().expect("its address").to_string();
    for addr in [taken.as_str(), "not an address"] {
        match node.serve_dashboard(addr).await {
            Err(Error::Config(message)) => assert!(
                message.starts_with(&format!("the dashboard cannot listen on {addr}: ")),
                "{message}"
            ),
            other => panic!("serving on {addr}: {other:?}"),
        }
    }
    node.shutdown().await;
}

/// Polls `script`'s value in the page until it is `wanted`.
async fn page_shows(browser: &Browser, what: &str, script: &str, wanted: Value) {
    poll_until(what, || {
        let seen = tokio::task::block_in_place(|| browser.run(script));
        let answer = if seen == wanted {
            Ok(())
        } else {
            Err(format!("the page shows {seen}"))
        };
        async move { answer }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sees_an_actor_move_live() {
    let (Some(chromedriver), Some(chromium)) = (
        find_program(&["chromedriver"]),
        find_program(&["chromium", "chromium-browser", "google-chrome"]),
    ) else {
        eprintln!(
            "SKIPPED: chromium or chromedriver not installed \
             (apt-get install chromium chromium-driver): the page was not tested in a browser"
        );
        return;
    };
    let (a, b) = cluster("browser").await;
    let walker = a
        .spawn_named("walker", Walker::default())
        .await
        .expect("spawn");
    let dashboard = a.serve_dashboard("127.0.0.1:0").await.expect("serves");
    let browser =
        tokio::task::block_in_place(|| Browser::start(&chromedriver, &chromium, 1280, 900));
    tokio::task::block_in_place(|| browser.open(&dashboard.url()));

    let location = r#"const cell = document.querySelector('#named tr[data-name="walker"] td.node');
                      return cell ? cell.textContent : null;"#;
    let hosted_here = format!(
        r#"return document.querySelector('#actors tr[data-actor="{}"]') !== null;"#,
        walker.id()
    );
    page_shows(&browser, "walker on a", location, json!(a.id().as_str())).await;
    page_shows(
        &browser,
        "walker among a's actors",
        &hosted_here,
        json!(true),
    )
    .await;
    page_shows(
        &browser,
        "the page to be live",
        "return document.getElementById('status').className;",
        json!("live"),
    )
    .await;

    a.migrate(&walker, b.id().clone())
        .await
        .expect("moves to b");
    page_shows(&browser, "walker on b", location, json!(b.id().as_str())).await;
    page_shows(
        &browser,
        "walker gone from a's actors",
        &hosted_here,
        json!(false),
    )
    .await;
    let freeze = r#"const row = document.querySelector('#events tr[data-kind="departed"]');
                    return row ? /^[0-9.]+ (ms|µs)$/.test(row.children[4].textContent) : false;"#;
    page_shows(
        &browser,
        "the departure with its freeze time",
        freeze,
        json!(true),
    )
    .await;

    let screenshot = tokio::task::block_in_place(|| browser.screenshot());
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&path, &screenshot).expect("save the screenshot");
    let viewport = tokio::task::block_in_place(|| {
        browser.run(
            "return [Math.round(innerWidth * devicePixelRatio), \
                     Math.round(innerHeight * devicePixelRatio)];",
        )
    });
    let image = png::decode(&screenshot).unwrap_or_else(|e| panic!("the screenshot: {e}"));
    assert_eq!(
        json!([image.width, image.height]),
        viewport,
        "the screenshot is the size of the viewport"
    );
    assert!(image.width >= 800 && image.height >= 600, "a full page");
    let variance = image.variance();
    assert!(
        image.colours >= 16 && variance > 100.0,
        "a blank page? {} colours, luminance variance {variance:.0}",
        image.colours
    );
    eprintln!(
        "browser: the page showed walker move {} -> {}; screenshot {} ({}x{}, {} bytes, {} colours, luminance variance {variance:.0})",
        a.id(),
        b.id(),
        path.display(),
        image.width,
        image.height,
        screenshot.len(),
        image.colours
    );
    drop(browser);
    a.shutdown().await;
    b.shutdown().await;
}
