//! Event handlers across builds: a manager arriving with a handler in an
//! older shape keeps it, upgraded, when that shape is registered with
//! `event_handler_upgrade!`; otherwise its move is refused, naming the
//! handler type.

use super::*;

#[crate::mobile]
#[derive(Debug, Clone)]
pub(crate) enum Ping {
    Ping,
}
crate::event_manager!(Ping, tag = "events-upgrade-tests.ping");

/// The handler as the older build had it: a `u32` count.
#[crate::mobile]
pub(crate) struct CountV1 {
    count: u32,
}

/// The handler now: a `u64` count and a label the upgrade computes.
#[crate::mobile]
pub(crate) struct Count {
    count: u64,
    label: String,
}

impl From<CountV1> for Count {
    fn from(old: CountV1) -> Self {
        Count {
            count: u64::from(old.count),
            label: format!("upgraded at {}", old.count),
        }
    }
}

impl EventHandler<Ping> for Count {
    type Call = ();
    type Reply = (u64, String);
    fn handle_event(&mut self, _: &Ping) -> Result<(), String> {
        self.count += 1;
        Ok(())
    }
    fn handle_call(&mut self, (): ()) -> Result<(u64, String), String> {
        Ok((self.count, self.label.clone()))
    }
}
crate::event_handler!(Count, Ping, tag = "events-upgrade-tests.count");
crate::event_handler_upgrade!(CountV1 => Count, Ping);

/// A shape nobody registered an upgrade from.
#[crate::mobile]
pub(crate) struct Unknown {
    text: String,
}

fn wire_of<S: Serialize>(fingerprint: u64, state: &S) -> HandlerWire {
    HandlerWire {
        id: "counter".into(),
        tag: "events-upgrade-tests.count".into(),
        fingerprint,
        state: ByteBuf::from(mobility_net::encode(state).expect("encode")),
    }
}

#[test]
fn a_handler_in_a_registered_older_shape_is_upgraded_on_arrival() {
    let wire = wire_of(CountV1::FINGERPRINT, &CountV1 { count: 41 });
    let mut handler = rebuild::<Ping>(&wire).expect("the older shape is upgraded");
    handler.handle_event(&Ping::Ping).expect("handles events");
    let reply = handler.handle_call(&mobility_net::encode(&()).expect("encode"));
    let (count, label): (u64, String) =
        mobility_net::decode(&reply.expect("answers")).expect("decode");
    assert_eq!((count, label.as_str()), (42, "upgraded at 41"));
    // It travels on in the current shape.
    assert_eq!(handler.fingerprint(), Count::FINGERPRINT);
}

#[test]
fn the_current_shape_needs_no_upgrade() {
    let current = Count {
        count: 7,
        label: "born here".into(),
    };
    let wire = wire_of(Count::FINGERPRINT, &current);
    assert!(rebuild::<Ping>(&wire).is_ok());
}

#[test]
fn a_shape_without_an_upgrade_refuses_the_move_naming_the_handler() {
    let wire = wire_of(
        Unknown::FINGERPRINT,
        &Unknown {
            text: "other".into(),
        },
    );
    let error = rebuild::<Ping>(&wire).err().expect("refused");
    assert!(
        error.contains("events-upgrade-tests.count") && error.contains("no upgrade from it"),
        "{error}"
    );
}
