//! The seed's quick start across OS processes: two `tcp_node` examples on
//! loopback ports chosen by the OS; the first spawns the pinger, `send_me`
//! moves it to the second (another cluster), and the pings keep being
//! answered there.

mod common;

use common::process::ExampleProcess;

/// A `tcp_node` of another cluster than the others, on the shared secret.
fn tcp_node(args: &[&str]) -> ExampleProcess {
    ExampleProcess::start("tcp_node", "a secret both clusters share", args)
}

fn listen_addr(line: &str) -> String {
    line.rsplit(' ').next().expect("address").to_string()
}

#[test]
fn send_me_moves_the_pinger_to_a_node_of_another_cluster() {
    let mut b = tcp_node(&["--port", "0", "--name", "node-b", "--cluster", "west"]);
    let b_addr = listen_addr(&b.wait_for("listening on"));
    let mut a = tcp_node(&[
        "--port",
        "0",
        "--name",
        "node-a",
        "--cluster",
        "east",
        "--spawn",
        "--ping-ms",
        "100",
    ]);
    a.wait_for("listening on");
    a.wait_for("handled on node-a");

    a.send(&format!("send_me tcp://{b_addr}"));
    b.wait_for("pinger arrived with");
    a.wait_for("handled on node-b");
    b.wait_for("from node-a");
    // And it keeps counting there.
    let before: u64 = count_of(&a.wait_for("handled on node-b"));
    let after: u64 = count_of(&a.wait_for("handled on node-b"));
    assert!(after > before, "the count goes on: {before} then {after}");
    a.send("status");
    a.wait_for("pinger lives on node-b");
    a.quit();
    b.quit();
}

fn count_of(line: &str) -> u64 {
    // "pong: ping #12 handled on node-b"
    line.split('#')
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"))
}

/// A type the `tcp_node` example does not have compiled in.
#[mobility::mobile]
#[derive(Default)]
pub struct OnlyInTests {
    value: u64,
}

#[mobility::mobile]
impl OnlyInTests {
    pub fn value(&self) -> u64 {
        self.value
    }
}

#[tokio::test]
async fn a_node_without_the_type_refuses_it_and_the_actor_stays() {
    let mut remote = tcp_node(&["--port", "0", "--name", "node-r", "--cluster", "remote"]);
    let remote_addr = listen_addr(&remote.wait_for("listening on"));
    let node = mobility::Node::builder()
        .id("local")
        .cluster("local", "a secret both clusters share")
        .trust_cluster("*", "a secret both clusters share")
        .listen("127.0.0.1:0")
        .start()
        .await
        .expect("local node");
    let actor = node.spawn(OnlyInTests { value: 42 }).await.expect("spawn");
    let dest: mobility::Destination = format!("tcp://{remote_addr}").parse().expect("dest");
    let err = node.migrate(&actor, dest).await.expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("OnlyInTests") && text.contains("Pinger"),
        "names the type and what is known: {text}"
    );
    assert!(node.hosts(actor.id()));
    assert_eq!(actor.value().await, Ok(42));
    remote.quit();
}
