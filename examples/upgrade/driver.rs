//! The prompt shared by `upgrade_old` and `upgrade_new`: one node in its own
//! cluster on a loopback port chosen by the OS, trusting the other
//! clusters that prove the same secret (`MOBILITY_SECRET`), optionally
//! with the counter spawned. Commands: `migrate tcp://HOST:PORT [N]` (with
//! `N`: the actor is held busy, the move is asked, and `N` increments queue
//! up behind it, to travel in its mailbox), `describe` (through the same
//! handle, wherever the counter lives), `retired` (a handler that only
//! version 1 has), `quit`.

use std::future::Future;
use std::pin::Pin;

use mobility::prelude::*;
use tokio::io::{AsyncBufReadExt, BufReader};

/// What the driver needs of the counter of one build.
/// A call in flight.
pub type Reply<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

pub trait Demo: Actor + Sized {
    /// The version this build runs.
    const BUILD: u32;
    /// A fresh counter.
    fn fresh() -> Self;
    /// Asks the counter to describe itself.
    fn describe(
        handle: &Handle<Self>,
    ) -> Pin<Box<dyn Future<Output = Result<String, Error>> + Send>>;
    /// Holds the actor busy for a moment (fire-and-forget).
    fn pause(handle: &Handle<Self>) -> Result<(), Error>;
    /// Adds one (fire-and-forget).
    fn add_one(handle: &Handle<Self>) -> Result<(), Error>;
    /// Calls the handler that version 2 removed (`None` in a build without it).
    fn retired(handle: &Handle<Self>) -> Option<Reply<String>> {
        let _ = handle;
        None
    }
}

pub async fn run<A: Demo>() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().ok_or("usage: NODE_NAME [--spawn]")?;
    let spawn = args.next().as_deref() == Some("--spawn");
    let secret = std::env::var("MOBILITY_SECRET").map_err(|_| "set MOBILITY_SECRET")?;
    let node = Node::builder()
        .id(&name)
        .cluster(format!("cluster-{name}"), &secret)
        .trust_cluster("*", &secret)
        .listen("127.0.0.1:0")
        .start()
        .await?;
    let addr = node.listen_addr().ok_or("the node does not listen")?;
    println!(
        "{name} runs version {} of the counter, listening on {addr}",
        A::BUILD
    );
    let counter = if spawn {
        let counter = node.spawn(A::fresh()).await?;
        println!("spawned the counter: {}", A::describe(&counter).await?);
        Some(counter)
    } else {
        None
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(counter) = &counter else {
            if words.first() == Some(&"quit") {
                break;
            }
            continue;
        };
        match words.as_slice() {
            ["quit"] => break,
            ["retired"] => match A::retired(counter) {
                Some(call) => match call.await {
                    Ok(text) => println!("retired: {text}"),
                    Err(e) => println!("retired failed: {e}"),
                },
                None => println!("this build has no retired handler"),
            },
            ["describe"] => match A::describe(counter).await {
                Ok(text) => println!("describe: {text}"),
                Err(e) => println!("describe failed: {e}"),
            },
            ["migrate", dest, rest @ ..] => {
                let dest: Destination = dest.parse()?;
                let queued: u64 = rest.first().map_or(Ok(0), |n| n.parse())?;
                if queued > 0 {
                    A::pause(counter)?;
                }
                let mut moving = Box::pin(node.migrate(counter, dest));
                // One poll asks for the move (it waits for the pause to end);
                // what is sent next queues up behind it and travels.
                let early = tokio::time::timeout(std::time::Duration::ZERO, &mut moving).await;
                for _ in 0..queued {
                    A::add_one(counter)?;
                }
                let outcome = match early {
                    Ok(outcome) => outcome,
                    Err(_) => moving.await,
                };
                match outcome {
                    Ok(report) => println!("migrated: {report}"),
                    Err(e) => println!("migration failed: {e}"),
                }
            }
            _ => println!("commands: migrate DEST [N] | describe | retired | quit"),
        }
    }
    node.shutdown().await;
    Ok(())
}
