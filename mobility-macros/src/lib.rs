//! The `#[mobile]` attribute of the mobility framework. Use it through
//! `mobility` (`use mobility::prelude::*;`), which re-exports it; the
//! generated code only names paths under `::mobility`.

mod actor_gen;
mod attrs;
mod checks;
mod ctxt;
mod handlers;
mod instances;
mod probe;
mod reserved;
mod state;
mod util;
mod versions;

use proc_macro::TokenStream;
use quote::ToTokens;

/// Makes a struct or enum migratable, or an impl block a mobile actor.
///
/// On a struct or enum: serde (de)serialization (byte vectors and arrays
/// travel as byte strings), `Mobile`, and a compile-time check of every
/// field; `#[mobile(skip)]` on a field leaves it out (rebuilt with
/// `Default`). `#[mobile(previous_of = Actor, version = N)]` declares it
/// the state of an older version of an actor (see versions below).
///
/// On the inherent impl block of an actor: every `pub fn` or `pub async fn`
/// taking `&self` or `&mut self` becomes a handler (optional last parameter
/// `ctx: &mut Context<Self>`); `#[mobile(skip)]` excludes one;
/// `#[mobile(on_start)]`, `#[mobile(on_depart)]`, `#[mobile(on_arrive)]` and
/// `#[mobile(on_stop)]` mark lifecycle hooks; `#[mobile(tag = "...")]` on the
/// impl sets the type tag. Generates `{Type}Msg`, `{Type}Calls` (the
/// request/reply methods a `Handle<Type>` derefs to, each documented with
/// the handler's doc comment), `{Type}Tell<S>` (the fire-and-forget ones),
/// `impl Actor` and the registration of the type. A handler cannot be named
/// like a method of `Handle` (`id`, `stop`, `tell`, `clone`, ...), which
/// would hide it; `#[mobile(rename = "account_id")]` on it keeps the
/// method's name and gives the handle's methods (and the message) another.
///
/// Versions (rolling upgrades): `#[mobile(version = 3)]` on the impl block
/// gives the actor type's version (1 when absent). Each older version it
/// still accepts is declared on the plain type that holds that version's
/// state, `#[mobile(previous_of = Counter, version = 2)]` on a struct or
/// enum (at least as visible as the actor), and upgraded to the state of the
/// next version with `From` (`impl From<CounterV2> for Counter`): a chain
/// that a destination runs, from the version that arrives up to its own,
/// before `on_arrive`. A missing `From`, a version declared twice or missing
/// in the chain, and an older version not below the current one are compile
/// errors at the version.
///
/// A generic actor (`impl<T: Migratable> Cache<T>`) is registered once per
/// concrete type, each with its own type tag:
/// `#[mobile(instances(Cache<u64>, Cache<String> = "cache-string"))]` on the
/// impl block (the tag defaults to the module path and the type as
/// written). Only the listed instantiations implement `Actor`; using another
/// one is a compile error. Its type parameters need the bound `Migratable`
/// (and `Sync` if an `async` handler takes `&self`).
///
/// Paths starting with `crate::`, `self::` or `super::` are never taken for
/// the well-known non-migratable types (`Rc`, `File`, `Sender`, ...), so a
/// user type of the same name can be named that way.
#[proc_macro_attribute]
pub fn mobile(args: TokenStream, input: TokenStream) -> TokenStream {
    expand(args.into(), input.into()).into()
}

fn expand(
    args: proc_macro2::TokenStream,
    input: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let item: syn::Item = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(e) => {
            let mut out = input;
            out.extend(e.to_compile_error());
            return out;
        }
    };
    match item {
        syn::Item::Struct(_) | syn::Item::Enum(_) => {
            match syn::parse2::<syn::DeriveInput>(input.clone()) {
                Ok(derive) => state::expand(args, derive),
                Err(e) => {
                    let mut out = input;
                    out.extend(e.to_compile_error());
                    out
                }
            }
        }
        syn::Item::Impl(mut imp) => {
            let mut cx = ctxt::Ctxt::default();
            let opts = attrs::parse_impl_opts(&mut cx, args);
            let ir = handlers::parse(&mut cx, &mut imp, opts);
            let mut out = imp.into_token_stream();
            if let Some(ir) = ir {
                out.extend(actor_gen::generate(&ir));
            }
            out.extend(cx.into_tokens());
            out
        }
        other => {
            let what = match &other {
                syn::Item::Union(_) => {
                    "a union (its fields overlap, so it cannot be serialized safely)"
                }
                syn::Item::Fn(_) => "a function",
                syn::Item::Trait(_) => "a trait",
                syn::Item::Mod(_) => "a module",
                _ => "this item",
            };
            let msg = format!(
                "`#[mobile]` cannot be applied to {what}: put it on a struct or enum (migratable \
                 data, the state of an actor) and on the inherent impl block of an actor"
            );
            let mut out = other.to_token_stream();
            out.extend(syn::Error::new_spanned(attr_target(&other), msg).to_compile_error());
            out
        }
    }
}

/// The part of an item that errors about the attribute point at.
fn attr_target(item: &syn::Item) -> proc_macro2::TokenStream {
    use quote::quote;
    match item {
        syn::Item::Union(u) => {
            let (t, i) = (&u.union_token, &u.ident);
            quote!(#t #i)
        }
        syn::Item::Fn(f) => {
            let (t, i) = (&f.sig.fn_token, &f.sig.ident);
            quote!(#t #i)
        }
        syn::Item::Trait(t) => {
            let (k, i) = (&t.trait_token, &t.ident);
            quote!(#k #i)
        }
        other => other.to_token_stream(),
    }
}
