// Only the listed instantiations of a generic actor are actors.
use mobility::prelude::*;

#[mobile]
#[derive(Default)]
pub struct Cache<T: Migratable> {
    items: Vec<T>,
}

#[mobile(instances(Cache<u64>, Cache<String> = "cache-string"))]
impl<T: Migratable> Cache<T> {
    pub fn size(&self) -> usize {
        self.items.len()
    }
}

async fn spawn_unlisted(node: &Node) -> Result<(), Error> {
    let listed: Handle<Cache<u64>> = node.spawn(Cache::default()).await?;
    let unlisted = node.spawn(Cache::<i32>::default()).await?;
    let _ = (listed.size().await?, unlisted);
    Ok(())
}

fn main() {
    let _ = spawn_unlisted;
}
