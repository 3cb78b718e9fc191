//! A code lock as a mobile state machine (the gen_statem door of the OTP
//! documentation): locked, or open for a while with a state timeout that
//! locks it again. A wrong code is rejected while locked; a code typed while
//! the door is open is postponed until it locks. The door migrates while
//! open and relocks on time on the other node; the postponed code is then
//! checked there, and a caller that asked to be told when the door opens is
//! answered from a later handler (a deferred reply).
//!
//! `cargo run --example door`

use std::time::{Duration, Instant};

use mobility::prelude::*;

/// The states of the door.
#[mobile]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorState {
    Locked,
    Open,
}

#[mobile]
pub struct Door {
    #[mobile(state)]
    state: DoorState,
    code: String,
    open_for_ms: u64,
    /// Callers waiting for the door to open: answered later, wherever the
    /// door is then.
    waiting: Vec<DeferredReply<String>>,
    log: Vec<String>,
}

#[mobile]
impl Door {
    /// Types a code. Locked: the right code opens, a wrong one is rejected.
    /// Open: the code is postponed until the door locks again.
    pub fn press(
        &mut self,
        code: String,
        ctx: &mut Context<Self>,
    ) -> Reply<Result<String, String>> {
        match self.state {
            DoorState::Open => {
                ctx.postpone();
                Reply::Later // the caller keeps waiting: the message comes back
            }
            DoorState::Locked if code == self.code => {
                self.state = DoorState::Open;
                Reply::Now(Ok(format!("opened on {}", ctx.node().id())))
            }
            DoorState::Locked => {
                let here = ctx.node().id();
                self.log
                    .push(format!("wrong code {code:?} rejected on {here}"));
                Reply::Now(Err(format!("wrong code {code:?}")))
            }
        }
    }

    pub fn waiters(&self) -> usize {
        self.waiting.len()
    }

    /// Answers when the door is open (at once if it is).
    pub fn when_open(&mut self, ctx: &mut Context<Self>) -> Reply<String> {
        if self.state == DoorState::Open {
            return Reply::Now(format!("already open on {}", ctx.node().id()));
        }
        self.waiting.push(ctx.defer_reply());
        Reply::Later
    }

    pub fn state(&self) -> DoorState {
        self.state
    }

    pub fn log(&self) -> Vec<String> {
        self.log.clone()
    }

    /// The state timeout of the open door.
    pub fn relock(&mut self, ctx: &mut Context<Self>) {
        self.log.push(format!("relocked on {}", ctx.node().id()));
        self.state = DoorState::Locked;
    }

    #[mobile(on_enter)]
    fn entered(&mut self, ctx: &mut Context<Self>) {
        if self.state == DoorState::Open {
            ctx.set_state_timeout(Duration::from_millis(self.open_for_ms))
                .relock();
            let here = ctx.node().id().clone();
            for waiter in std::mem::take(&mut self.waiting) {
                waiter.send(ctx, format!("opened on {here}"));
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Node::builder().id("node-a").start().await?;
    let b = Node::builder().id("node-b").start().await?;
    a.connect_in_process(&b)?;

    let door = a
        .spawn(Door {
            state: DoorState::Locked,
            code: "1234".into(),
            open_for_ms: 1500,
            waiting: Vec::new(),
            log: Vec::new(),
        })
        .await?;

    // Someone waits for the door to open (a deferred reply).
    let watcher = {
        let door = door.clone();
        tokio::spawn(async move { door.when_open().await })
    };
    while door.waiters().await? == 0 {
        tokio::task::yield_now().await;
    }
    println!("wrong code: {:?}", door.press("0000".into()).await?);
    let opened = Instant::now();
    println!("right code: {:?}", door.press("1234".into()).await?);
    println!("the watcher was told: {:?}", watcher.await??);

    // While open, a code is postponed: this caller waits until the door locks.
    let postponed = {
        let door = door.with_timeout(Duration::from_secs(10));
        tokio::spawn(async move {
            let answer = door.press("9999".into()).await;
            (answer, Instant::now())
        })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = a.migrate(&door, b.id()).await?;
    println!(
        "moved to {} while {:?}, {:.2} s after opening (freeze {:?}, {} timer moved)",
        report.to,
        door.state().await?,
        opened.elapsed().as_secs_f64(),
        report.freeze,
        report.timers
    );

    let (answer, at) = postponed.await?;
    println!(
        "postponed code answered {:.2} s after opening (state timeout 1.50 s): {:?}",
        at.duration_since(opened).as_secs_f64(),
        answer
    );
    println!(
        "state now: {:?}, on {}",
        door.state().await?,
        door.location()
    );
    for line in door.log().await? {
        println!("  log: {line}");
    }
    Ok(())
}
