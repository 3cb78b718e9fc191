//! The registered instantiations of a generic actor: `#[mobile(instances(
//! Cache<u64>, Cache<String> = "tag"))]` on its impl block. A destination
//! rebuilds an actor from its type tag, so each instantiation is registered
//! with a tag of its own; only registered ones implement `Actor`, so using
//! another one is a compile error at the use.

use crate::attrs::ImplOpts;
use crate::checks;
use crate::ctxt::Ctxt;
use crate::util;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Generics, Ident, LitStr, PathArguments, Type};

/// One instantiation to register.
pub(crate) struct Instance {
    pub(crate) ty: Type,
    pub(crate) tag: Option<LitStr>,
}

/// Checks the `tag` and `instances` options against the impl block; the
/// instantiations of a generic actor (none for a non-generic one).
pub(crate) fn check(
    cx: &mut Ctxt,
    opts: &ImplOpts,
    generics: &Generics,
    ident: &Ident,
    self_ty: &Type,
) -> Vec<Instance> {
    if generics.params.is_empty() {
        if let Some((span, _)) = &opts.instances {
            cx.push(syn::Error::new(
                *span,
                format!(
                    "`instances(...)` registers the instantiations of a generic actor, and \
                     `{ident}` is not generic: remove it (`tag = \"...\"` chooses the type tag of \
                     a non-generic actor)"
                ),
            ));
        }
        return Vec::new();
    }
    if let Some(tag) = &opts.tag {
        cx.error_spanned(
            tag,
            format!(
                "a generic actor has one type tag per instantiation: give it next to the \
                 instantiation, as in `instances({ident}<...> = {})`",
                tag.to_token_stream()
            ),
        );
    }
    let Some((span, list)) = &opts.instances else {
        cx.error_spanned(
            generics,
            format!(
                "a generic actor is registered once per concrete type, since a destination \
                 rebuilds an actor from its type tag: list the instantiations the program uses \
                 on this impl block, as in `#[mobile(instances({ident}<...>, {ident}<...> = \
                 \"a-tag\"))]`"
            ),
        );
        return Vec::new();
    };
    if list.is_empty() {
        cx.push(syn::Error::new(
            *span,
            format!("list at least one instantiation, as in `instances({ident}<...>)`"),
        ));
    }
    let params: Vec<Ident> = generics.type_params().map(|p| p.ident.clone()).collect();
    let mut out: Vec<Instance> = Vec::new();
    for entry in list {
        let ty = &entry.ty;
        if !same_shape(ty, ident, self_ty) {
            cx.error_spanned(
                ty,
                format!(
                    "`{}` is not an instantiation of `{}`: name the actor type with concrete \
                     type arguments, as in `{ident}<u64>`",
                    util::canonical(ty),
                    util::canonical(self_ty)
                ),
            );
            continue;
        }
        if checks::mentions(ty.to_token_stream(), &params) {
            cx.error_spanned(
                ty,
                "an instantiation names concrete types, not the impl block's type parameters",
            );
            continue;
        }
        let text = util::canonical(ty);
        if out.iter().any(|i| util::canonical(&i.ty) == text) {
            cx.error_spanned(ty, format!("`{text}` is already listed"));
            continue;
        }
        if let Some(tag) = &entry.tag {
            let taken = out
                .iter()
                .find(|i| i.tag.as_ref().is_some_and(|t| t.value() == tag.value()));
            if let Some(other) = taken {
                cx.error_spanned(
                    tag,
                    format!(
                        "the type tag {} is already the tag of `{}`: each instantiation needs \
                         its own",
                        tag.to_token_stream(),
                        util::canonical(&other.ty)
                    ),
                );
                continue;
            }
        }
        out.push(Instance {
            ty: ty.clone(),
            tag: entry.tag.clone(),
        });
    }
    out
}

/// `Cache<A, B>` for the actor `Cache<T, U>`: same name, as many arguments.
fn same_shape(ty: &Type, ident: &Ident, self_ty: &Type) -> bool {
    let args = |ty: &Type| match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| match &s.arguments {
            PathArguments::AngleBracketed(a) => (s.ident.clone(), a.args.len()),
            _ => (s.ident.clone(), 0),
        }),
        _ => None,
    };
    match (args(ty), args(self_ty)) {
        (Some((name, n)), Some((_, m))) => name == *ident && n == m,
        _ => false,
    }
}

/// The registration of the actor type: one per instantiation of a generic
/// actor (with its `ActorInstance` impl), or the type itself.
pub(crate) fn registrations(
    self_ty: &Type,
    ident: &Ident,
    generics: &Generics,
    instances: &[Instance],
) -> TokenStream {
    if generics.params.is_empty() {
        let rust_name = ident.to_string();
        return quote! {
            ::mobility::__private::inventory::submit! {
                ::mobility::__private::ActorType::of::<#self_ty>(#rust_name)
            }
        };
    }
    let mut out = TokenStream::new();
    for Instance { ty, tag } in instances {
        let text = util::canonical(ty);
        let tag = match tag {
            Some(lit) => quote!(#lit),
            None => quote!(::core::concat!(::core::module_path!(), "::", #text)),
        };
        let span = ty.span();
        out.extend(quote_spanned! {span=>
            impl ::mobility::ActorInstance for #ty {
                const TYPE_TAG: &'static str = #tag;
                const FINGERPRINT: u64 = ::mobility::__private::fingerprint_str(#text);
            }
            ::mobility::__private::inventory::submit! {
                ::mobility::__private::ActorType::of::<#ty>(#text)
            }
        });
    }
    out
}
