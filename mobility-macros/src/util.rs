//! Small helpers on types shared by the struct and impl expansions.

use quote::ToTokens;
use syn::visit_mut::VisitMut;
use syn::{GenericArgument, PathArguments, Type};

/// The canonical text of a type for fingerprints: its tokens, without spaces.
pub(crate) fn canonical<T: ToTokens>(tokens: &T) -> String {
    tokens
        .to_token_stream()
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Replaces `Self` in a type by `with` (generated code outside the user's
/// impl needs the concrete type).
pub(crate) fn replace_self(ty: &Type, with: &Type) -> Type {
    struct Replace<'a>(&'a Type);
    impl VisitMut for Replace<'_> {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::Path(p) = ty {
                if p.qself.is_none() && p.path.is_ident("Self") {
                    *ty = self.0.clone();
                    return;
                }
            }
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
    let mut ty = ty.clone();
    Replace(with).visit_type_mut(&mut ty);
    ty
}

/// Is this a byte container that `serde_bytes` encodes as a CBOR byte string:
/// `Vec<u8>`, `[u8; N]`, `Box<[u8]>`, or an `Option` of one?
pub(crate) fn is_bytes(ty: &Type) -> bool {
    match ty {
        Type::Array(a) => is_u8(&a.elem),
        Type::Group(g) => is_bytes(&g.elem),
        Type::Paren(p) => is_bytes(&p.elem),
        Type::Path(_) => {
            if let Some(arg) = single_arg(ty, "Vec") {
                return is_u8(arg);
            }
            if let Some(Type::Slice(s)) = single_arg(ty, "Box") {
                return is_u8(&s.elem);
            }
            if let Some(inner) = single_arg(ty, "Option") {
                return single_arg(inner, "Option").is_none() && is_bytes(inner);
            }
            false
        }
        _ => false,
    }
}

fn is_u8(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident("u8"))
}

/// `Name<Arg>` (by last segment) -> `Arg`.
fn single_arg<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    if args.args.len() != 1 {
        return None;
    }
    match args.args.first() {
        Some(GenericArgument::Type(t)) => Some(t),
        _ => None,
    }
}

/// `snake_case` -> `UpperCamelCase` (for message variants).
pub(crate) fn upper_camel(name: &str) -> String {
    let name = name.strip_prefix("r#").unwrap_or(name);
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        out.push_str("Handler");
    }
    out
}

/// The doc comments among `attrs`.
pub(crate) fn docs(attrs: &[syn::Attribute]) -> Vec<syn::Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect()
}
