#![no_implicit_prelude]
#![deny(missing_docs)]
//! Generic actors: several type parameters, a const parameter, handlers
//! that do not use the parameters, deferred replies, timers; generated code
//! names everything by absolute path and documents what it makes public.

use ::mobility::{Actor, ActorInstance, Context, Handle, Migratable, Node, Reply};
use ::std::string::String;
use ::std::vec::Vec;
// Trait methods the handlers call (nothing is in scope by default here).
use ::core::default::Default;
use ::core::iter::Iterator;

/// A map from keys to values.
#[::mobility::mobile]
#[derive(Default)]
pub struct Table<K: Migratable, V: Migratable> {
    rows: Vec<(K, V)>,
}

#[::mobility::mobile(instances(
    Table<String, u64> = "table-string-u64",
    Table<u8, ::std::vec::Vec<String>>,
))]
impl<K, V> Table<K, V>
where
    K: Migratable + ::core::cmp::PartialEq + ::core::clone::Clone + ::core::marker::Sync,
    V: Migratable + ::core::clone::Clone + ::core::marker::Sync,
{
    /// Inserts a row.
    pub fn insert(&mut self, key: K, value: V) -> usize {
        self.rows.push((key, value));
        self.rows.len()
    }

    /// Looks a key up.
    pub async fn get(&self, key: K) -> ::core::option::Option<V> {
        self.rows.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
    }

    /// Does not use the parameters.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Answers later.
    pub fn keys_later(&mut self, ctx: &mut Context<Self>) -> Reply<Vec<K>> {
        ctx.send_after(::std::time::Duration::from_millis(1)).len();
        Reply::Now(self.rows.iter().map(|(k, _)| k.clone()).collect())
    }

    /// A `Result` reply carrying the parameter.
    pub fn take(&mut self) -> ::core::result::Result<V, String> {
        self.rows.pop().map(|(_, v)| v).ok_or_else(String::new)
    }
}

/// A ring of `N` numbers.
#[::mobility::mobile]
#[derive(Default)]
pub struct Ring<const N: usize> {
    values: Vec<u64>,
}

#[::mobility::mobile(instances(Ring<4>, Ring<8> = "ring-8"))]
impl<const N: usize> Ring<N> {
    /// Pushes a value, forgetting the oldest beyond `N`.
    pub fn push(&mut self, value: u64) -> usize {
        if self.values.len() == N {
            self.values.remove(0);
        }
        self.values.push(value);
        self.values.len()
    }
}

async fn use_them(node: &Node) -> ::core::result::Result<(), ::mobility::Error> {
    let table: Handle<Table<String, u64>> = node.spawn(Table::default()).await?;
    let _: usize = table.insert(String::new(), 1).await?;
    let _: ::core::option::Option<u64> = table.get(String::new()).await?;
    let _: Vec<String> = table.keys_later().await?;
    let _: ::core::result::Result<u64, String> = table.take().await?;
    table.tell().len()?;
    let other: Handle<Table<u8, Vec<String>>> = node.spawn(Table::default()).await?;
    let _: usize = other.len().await?;
    let ring: Handle<Ring<8>> = node.spawn(Ring::default()).await?;
    let _: usize = ring.push(3).await?;
    ::core::result::Result::Ok(())
}

fn main() {
    let _ = use_them;
    let _: &str = <Table<String, u64> as ActorInstance>::TYPE_TAG;
    let _: u64 = <Ring<4> as Actor>::SCHEMA;
}
