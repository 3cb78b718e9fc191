use mobility::prelude::*;

/// A traffic light whose state is an enum.
#[mobile]
#[derive(Debug, Default, PartialEq)]
pub enum Light {
    #[default]
    Red,
    Green {
        since_ms: u64,
    },
    Blinking(u8, String),
}

#[mobile]
impl Light {
    pub fn next(&mut self) -> String {
        *self = match self {
            Light::Red => Light::Green { since_ms: 0 },
            Light::Green { .. } => Light::Blinking(3, "yellow".to_owned()),
            Light::Blinking(..) => Light::Red,
        };
        format!("{self:?}")
    }
}

fn main() {
    assert!(<Light as Actor>::TYPE_TAG.ends_with("::Light"));
}
