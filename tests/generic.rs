//! Generic actors: `Cache<T>` registered for two instantiations, each with
//! its own type tag and schema, spawned on one node, one moved to another
//! and called there through the same handle.

mod common;

use common::linked;
use mobility::prelude::*;

#[mobile]
#[derive(Default)]
pub struct Cache<T: Migratable> {
    items: Vec<T>,
    hits: u64,
    arrivals: u32,
}

#[mobile(instances(Cache<String> = "cache-string", Cache<u64>))]
// `Sync`: the future of an `async` handler taking `&self` holds `&Cache<T>`.
impl<T: Migratable + Clone + Sync> Cache<T> {
    /// Stores an item; returns how many there are.
    pub fn put(&mut self, item: T) -> usize {
        self.items.push(item);
        self.items.len()
    }

    pub fn all(&mut self) -> Vec<T> {
        self.hits += 1;
        self.items.clone()
    }

    pub fn hits(&self) -> u64 {
        self.hits
    }

    pub async fn first(&self) -> Option<T> {
        self.items.first().cloned()
    }

    /// Renamed on the handle, where `id` is the actor's id.
    #[mobile(rename = "arrivals")]
    pub fn id(&self) -> u32 {
        self.arrivals
    }

    /// A hook taking the context, as a generic actor's methods can.
    #[mobile(on_arrive)]
    fn arrive(&mut self, ctx: &mut Context<Self>) {
        let _ = ctx.id();
        self.arrivals += 1;
    }
}

#[test]
fn each_instantiation_has_its_own_tag_and_schema() {
    assert_eq!(<Cache<String> as Actor>::TYPE_TAG, "cache-string");
    assert_eq!(
        <Cache<u64> as Actor>::TYPE_TAG,
        concat!(module_path!(), "::Cache<u64>")
    );
    assert_ne!(
        <Cache<String> as Actor>::SCHEMA,
        <Cache<u64> as Actor>::SCHEMA
    );
}

#[tokio::test]
async fn two_instantiations_run_and_one_migrates() {
    let nodes = linked(&["generic-a", "generic-b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);

    let words: Handle<Cache<String>> = a.spawn(Cache::default()).await.expect("spawn");
    let numbers: Handle<Cache<u64>> = a.spawn(Cache::default()).await.expect("spawn");
    assert_eq!(words.put("one".to_owned()).await.expect("put"), 1);
    assert_eq!(words.put("two".to_owned()).await.expect("put"), 2);
    numbers.tell().put(7).expect("tell");
    assert_eq!(numbers.put(8).await.expect("put"), 2);
    assert_eq!(words.all().await.expect("all"), ["one", "two"]);

    let report = a.migrate(&words, b.id()).await.expect("migrate");
    assert_eq!(words.location(), *b.id(), "moved: {report:?}");

    // The same handle reaches it on b, with its state; its hook ran there
    // (`arrivals` is the handler `id`, renamed: `words.id()` is the actor's).
    assert_eq!(words.hits().await.expect("hits"), 1);
    assert_eq!(words.arrivals().await.expect("arrivals"), 1);
    assert_eq!(words.put("three".to_owned()).await.expect("put"), 3);
    assert_eq!(words.all().await.expect("all"), ["one", "two", "three"]);
    assert_eq!(words.first().await.expect("first").as_deref(), Some("one"));
    // The other instantiation stayed on a, untouched.
    assert_eq!(numbers.location(), *a.id());
    assert_eq!(numbers.all().await.expect("all"), [7, 8]);
}
