//! Two actor types of one binary that claim the same type tag: a node refuses
//! to start and names both. (Its own test binary: the registry is global.)

use mobility::prelude::*;

#[mobile]
#[derive(Default)]
pub struct First {
    a: u8,
}

#[mobile(tag = "duplicate.tag")]
impl First {
    pub fn a(&self) -> u8 {
        self.a
    }
}

#[mobile]
#[derive(Default)]
pub struct Second {
    b: u8,
}

#[mobile(tag = "duplicate.tag")]
impl Second {
    pub fn b(&self) -> u8 {
        self.b
    }
}

#[tokio::test]
async fn a_node_refuses_to_start_with_duplicate_type_tags() {
    let err = Node::builder()
        .id("dup")
        .start()
        .await
        .expect_err("duplicate tags");
    match &err {
        Error::DuplicateTypeTag { tag, types } => {
            assert_eq!(tag, "duplicate.tag");
            let mut types = types.clone();
            types.sort();
            assert_eq!(types, vec!["First".to_string(), "Second".to_string()]);
        }
        other => panic!("expected a duplicate-tag error, got {other}"),
    }
    assert!(
        err.to_string().contains("#[mobile(tag"),
        "the message says how to fix it: {err}"
    );
}
