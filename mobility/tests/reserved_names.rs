//! The handler names `#[mobile]` refuses because a `Handle` method of the
//! same name would hide the generated one (`mobility-macros/src/reserved.rs`)
//! are exactly the methods and trait impls of `Handle` in
//! `src/api/handle.rs`: adding a public method or a trait impl to `Handle`
//! fails this test until the macro's list has it.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

#[allow(dead_code)] // the macro's helpers; this test reads its lists only
#[path = "../../mobility-macros/src/reserved.rs"]
mod reserved;

/// Is `ty` `Handle<...>`?
fn is_handle(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Handle"))
}

#[test]
fn every_handle_method_and_trait_is_reserved() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/handle.rs");
    let text = fs::read_to_string(&path).expect("read handle.rs");
    let file = syn::parse_file(&text).expect("parse handle.rs");
    let mut methods = BTreeSet::new();
    let mut traits = BTreeSet::new();
    for item in &file.items {
        let syn::Item::Impl(imp) = item else { continue };
        if !is_handle(&imp.self_ty) {
            continue;
        }
        match &imp.trait_ {
            Some((_, path, _)) => {
                let name = path
                    .segments
                    .last()
                    .expect("a trait name")
                    .ident
                    .to_string();
                traits.insert(name);
            }
            None => {
                for inner in &imp.items {
                    if let syn::ImplItem::Fn(f) = inner {
                        let public = matches!(f.vis, syn::Visibility::Public(_));
                        if public && f.sig.receiver().is_some() {
                            methods.insert(f.sig.ident.to_string());
                        }
                    }
                }
            }
        }
    }
    assert!(
        methods.contains("id") && traits.contains("Clone"),
        "the parse found Handle's impls"
    );

    let listed: BTreeSet<String> = reserved::HANDLE_METHODS
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(
        methods, listed,
        "the public methods of Handle differ from HANDLE_METHODS in mobility-macros/src/reserved.rs"
    );
    let listed_traits: BTreeSet<&str> = reserved::HANDLE_TRAITS.iter().map(|(t, _)| *t).collect();
    for t in &traits {
        assert!(
            listed_traits.contains(t.as_str()),
            "Handle implements `{t}`: list it and its methods in HANDLE_TRAITS of \
             mobility-macros/src/reserved.rs"
        );
    }
}
