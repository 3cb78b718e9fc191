//! Versions of an actor type, for rolling upgrades.
//!
//! An actor declares its current version on its impl block,
//! `#[mobile(version = 3)]` (1 when absent). Each older version it still
//! accepts is declared on the plain type that keeps that version's state:
//! `#[mobile(previous_of = Counter, version = 2)] struct CounterV2 { .. }`,
//! upgraded to the next version's state by `From` (`impl From<CounterV2> for
//! Counter`; `From<CounterV1> for CounterV2` below it, and so on): a chain
//! that a destination runs before `on_arrive`.
//!
//! Each version `N` of actor `A` is an impl of `mobility::Versioned<N>` for
//! `A`, so the compiler checks the chain: two declarations of one version
//! conflict, a version whose next one is declared nowhere cannot reach the
//! current version, a missing `From` is an error at the version, and a
//! `previous_of` version that is not older than the current one fails a
//! constant assertion.

use crate::ctxt::Ctxt;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{DeriveInput, LitInt, Type};

/// `#[mobile(previous_of = Actor, version = N)]` on a struct or enum.
pub(crate) struct Previous {
    /// The actor type whose older state this is.
    pub(crate) actor: Type,
    /// The version, and its literal (errors about the chain point at it).
    pub(crate) version: (u32, LitInt),
}

/// Reads a version number: an integer from 1 up.
pub(crate) fn parse_version(lit: &LitInt) -> syn::Result<u32> {
    match lit.base10_parse::<u32>() {
        Ok(0) => Err(syn::Error::new(lit.span(), "versions start at 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(syn::Error::new(
            lit.span(),
            "a version is a whole number from 1 up, like `version = 2`",
        )),
    }
}

/// Parses the arguments of `#[mobile(...)]` on a struct or enum: nothing,
/// or the older version of an actor's state it is.
pub(crate) fn parse_type_opts(cx: &mut Ctxt, args: TokenStream) -> Option<Previous> {
    if args.is_empty() {
        return None;
    }
    let mut actor: Option<Type> = None;
    let mut version: Option<(u32, LitInt)> = None;
    let mut previous_span = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("previous_of") {
            if actor.is_some() {
                return Err(meta.error("duplicate `previous_of` option"));
            }
            previous_span = Some(syn::spanned::Spanned::span(&meta.path));
            actor = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("version") {
            if version.is_some() {
                return Err(meta.error("duplicate `version` option"));
            }
            let lit: LitInt = meta.value()?.parse()?;
            version = Some((parse_version(&lit)?, lit));
            Ok(())
        } else {
            Err(meta.error(
                "unknown `#[mobile]` option on a struct or enum: it takes only `previous_of = \
                 Actor, version = N`, on the state of an older version of an actor \
                 (`tag = \"...\"`, `version = N` and `instances(...)` of the actor itself go on \
                 its impl block)",
            ))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        cx.push(e);
        return None;
    }
    match (actor, version) {
        (Some(actor), Some(version)) => Some(Previous { actor, version }),
        (Some(actor), None) => {
            cx.push(syn::Error::new(
                previous_span.unwrap_or_else(Span::call_site),
                format!(
                    "an older state says which version of the actor it is: \
                     `#[mobile(previous_of = {}, version = N)]`",
                    quote!(#actor)
                ),
            ));
            None
        }
        (None, Some((_, lit))) => {
            cx.push(syn::Error::new(
                lit.span(),
                "`version` on a struct or enum declares an older version of an actor's state \
                 and comes with the actor: `#[mobile(previous_of = Actor, version = N)]`; the \
                 current version of an actor goes on its impl block",
            ));
            None
        }
        (None, None) => None,
    }
}

/// What `previous_of` generates next to the older state: its place in the
/// actor's chain of versions (`Versioned<N>`, upgraded through version
/// `N + 1`), the check that it is older than the current version, and its
/// registration.
pub(crate) fn older_state(cx: &mut Ctxt, input: &DeriveInput, prev: &Previous) -> TokenStream {
    if !input.generics.params.is_empty() {
        cx.error_spanned(
            &input.generics,
            "the older state of an actor is a plain type: `previous_of` takes no generic \
             parameters on it",
        );
        return TokenStream::new();
    }
    let old = &input.ident;
    let actor = &prev.actor;
    let (version, lit) = &prev.version;
    let span = lit.span();
    let Some(next) = version.checked_add(1) else {
        cx.error_spanned(lit, "this version is the last one possible");
        return TokenStream::new();
    };
    let old_name = old.to_string();
    let actor_name = crate::util::canonical(actor);
    let not_older = format!(
        "`{old_name}` declares version {version} of `{actor_name}`, which is not older than the \
         current version of `{actor_name}` (`#[mobile(version = N)]` on its impl block, 1 if \
         absent): an older state's version must be below it"
    );
    let version = proc_macro2::Literal::u32_unsuffixed(*version);
    let next = proc_macro2::Literal::u32_unsuffixed(next);
    // The next version is `N + 1`, unless `N` is not older than the current
    // version: then the assertion below fails, and the chain points at this
    // version itself (always there) so that no second error follows.
    let version_impl = quote_spanned! {span=>
        impl ::mobility::Versioned<#version> for #actor {
            type State = #old;
            fn upgrade(state: #old) -> Self {
                ::mobility::__private::upgrade_chain::<
                    #actor,
                    {
                        if #version < <#actor as ::mobility::Actor>::VERSION {
                            #next
                        } else {
                            #version
                        }
                    },
                    _,
                >(state)
            }
        }
    };
    let older_check = quote_spanned! {span=>
        const _: () = ::core::assert!(
            #version < <#actor as ::mobility::Actor>::VERSION,
            #not_older
        );
    };
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, non_snake_case, clippy::all)]
        const _: () = {
            #version_impl
            #older_check
            ::mobility::__private::inventory::submit! {
                ::mobility::__private::OlderVersion::of::<#actor, #version>(#old_name)
            }
        };
    }
}

/// The current version of an actor, from its impl block: its `VERSION`
/// constant (only when declared) and its `Versioned` impl (the top of the
/// chain, where an older state's upgrades end).
pub(crate) fn current(
    declared: Option<&(u32, LitInt)>,
    self_ty: &Type,
    decl: &TokenStream,
    actor_where: &TokenStream,
) -> (TokenStream, TokenStream) {
    let (constant, version) = match declared {
        Some((n, lit)) => {
            let n = proc_macro2::Literal::u32_unsuffixed(*n);
            let span = lit.span();
            (quote!(const VERSION: u32 = #n;), quote_spanned!(span=> #n))
        }
        None => (TokenStream::new(), quote!(1)),
    };
    let versioned = quote! {
        impl #decl ::mobility::Versioned<#version> for #self_ty #actor_where {
            type State = Self;
            fn upgrade(state: Self) -> Self {
                state
            }
        }
    };
    (constant, versioned)
}
