#![no_implicit_prelude]
#![deny(missing_docs)]
//! Generated code names everything by absolute path, and documents every
//! public item it creates.

/// Data.
#[::mobility::mobile]
pub struct Data {
    values: ::std::vec::Vec<u8>,
    name: ::std::string::String,
    #[mobile(skip)]
    cached: ::std::option::Option<u64>,
}

/// The state.
#[::mobility::mobile]
pub struct Hygienic {
    data: ::std::vec::Vec<Data>,
}

/// The state of version 1, upgraded to version 2.
#[::mobility::mobile(previous_of = Hygienic, version = 1)]
pub struct HygienicV1 {
    data: ::std::vec::Vec<Data>,
}

impl ::core::convert::From<HygienicV1> for Hygienic {
    fn from(old: HygienicV1) -> Self {
        Hygienic { data: old.data }
    }
}

#[::mobility::mobile(version = 2)]
impl Hygienic {
    /// A handler.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Another one.
    pub async fn push(
        &mut self,
        values: ::std::vec::Vec<u8>,
        ctx: &mut ::mobility::Context<Self>,
    ) -> ::core::result::Result<(), ::std::string::String> {
        let _ = ctx;
        self.data.push(Data {
            values,
            name: ::std::string::String::new(),
            cached: ::core::option::Option::None,
        });
        ::core::result::Result::Ok(())
    }

    #[mobile(on_arrive)]
    fn arrive(&mut self) -> ::core::result::Result<(), ::std::string::String> {
        ::core::result::Result::Ok(())
    }
}

fn main() {}
