// A handler whose name a `Handle` already answers to could never be called.
use mobility::prelude::*;

#[mobile]
#[derive(Default)]
pub struct Account {
    id: u64,
    open: bool,
}

#[mobile]
impl Account {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn stop(&mut self) {
        self.open = false;
    }

    pub fn clone(&self) -> Account {
        Account { id: self.id, open: self.open }
    }

    // Not a handler: fine.
    #[mobile(skip)]
    pub fn tell(&self) -> bool {
        self.open
    }

    // Renamed on the handle: fine.
    #[mobile(rename = "account_id")]
    pub fn node_id(&self) -> u64 {
        self.id
    }

    // Renamed to a reserved name, or to something that is not a name.
    #[mobile(rename = "monitor")]
    pub fn watch(&self) -> bool {
        self.open
    }

    #[mobile(rename = "is open")]
    pub fn is_open(&self) -> bool {
        self.open
    }

    // A hook has no method on the handle to rename.
    #[mobile(on_stop, rename = "closing")]
    fn closing(&mut self) {}
}

async fn use_renamed(account: Handle<Account>) -> Result<u64, Error> {
    account.account_id().await
}

fn main() {
    let _ = use_renamed;
}
