//! `#[mobile]` on an impl block: parsing the handlers and hooks into an IR.

use crate::attrs::{self, Hook, ImplOpts, Place};
use crate::checks::{self, Role};
use crate::ctxt::Ctxt;
use crate::instances::{self, Instance};
use crate::reserved;
use crate::util;
use proc_macro2::Span;
use quote::format_ident;
use syn::spanned::Spanned;
use syn::{
    FnArg, Generics, Ident, ImplItem, ImplItemFn, ItemImpl, Pat, PathArguments, ReturnType, Type,
    Visibility,
};

/// One argument of a handler (the context excluded).
pub(crate) struct Arg {
    pub(crate) name: Ident,
    /// With `Self` replaced by the actor type.
    pub(crate) ty: Type,
}

/// A public method that becomes a message.
pub(crate) struct Handler {
    /// The user's method.
    pub(crate) name: Ident,
    /// The name of the generated methods on the handle: `name`, or the one
    /// given by `#[mobile(rename = "...")]`.
    pub(crate) method: Ident,
    pub(crate) variant: Ident,
    pub(crate) docs: Vec<syn::Attribute>,
    pub(crate) args: Vec<Arg>,
    pub(crate) ctx: bool,
    pub(crate) is_async: bool,
    /// `()` when the method returns nothing; `Self` replaced. For a handler
    /// returning `Reply<T>`, the `T` (what the caller receives).
    pub(crate) ret: Type,
    /// The handler returns `Reply<T>`: it may answer later.
    pub(crate) deferred: bool,
    /// A syntactic check rejected an argument, the reply or the method's
    /// generics: the handler only gets stub methods (so calls to it still
    /// type-check) and no message variant.
    pub(crate) rejected: bool,
    pub(crate) reply_rejected: bool,
    pub(crate) generics: Generics,
}

/// A lifecycle hook.
pub(crate) struct HookFn {
    pub(crate) hook: Hook,
    pub(crate) name: Ident,
    pub(crate) ctx: bool,
    pub(crate) is_async: bool,
    /// `on_arrive` returning `Result<(), E>`: the error type's span.
    pub(crate) returns: Option<Span>,
}

/// The parsed impl block.
pub(crate) struct ActorIr {
    pub(crate) self_ty: Type,
    pub(crate) ident: Ident,
    /// The impl block's generics: those of a generic actor, empty otherwise.
    pub(crate) generics: Generics,
    /// The names of its type parameters.
    pub(crate) params: Vec<Ident>,
    /// The registered instantiations of a generic actor.
    pub(crate) instances: Vec<Instance>,
    pub(crate) handlers: Vec<Handler>,
    pub(crate) hooks: Vec<HookFn>,
    pub(crate) opts: ImplOpts,
}

/// Parses the impl block; strips our attributes from it. `None` when it
/// cannot be an actor at all (errors are in `cx`).
pub(crate) fn parse(cx: &mut Ctxt, item: &mut ItemImpl, opts: ImplOpts) -> Option<ActorIr> {
    let mut ok = true;
    if let Some((_, path, _)) = &item.trait_ {
        cx.error_spanned(
            path,
            "`#[mobile]` goes on the inherent impl block of the actor (`impl Counter { ... }`), \
             not on a trait impl",
        );
        ok = false;
    }
    for lt in item.generics.lifetimes() {
        cx.error_spanned(lt, checks::lifetime_message());
        ok = false;
    }
    let ident = match &*item.self_ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.clone()),
        other => {
            cx.error_spanned(
                other,
                "`#[mobile]` impl blocks must be for a named struct or enum",
            );
            None
        }
    };
    let self_ty = (*item.self_ty).clone();
    let params: Vec<Ident> = item
        .generics
        .type_params()
        .map(|p| p.ident.clone())
        .collect();
    let instances = ident
        .as_ref()
        .map(|ident| instances::check(cx, &opts, &item.generics, ident, &self_ty))
        .unwrap_or_default();
    let mut handlers = Vec::new();
    let mut hooks: Vec<HookFn> = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let opts = attrs::parse_item_opts(cx, &method.attrs, Place::Method);
        attrs::strip(&mut method.attrs);
        for arg in &mut method.sig.inputs {
            if let FnArg::Typed(t) = arg {
                attrs::parse_item_opts(cx, &t.attrs, Place::Argument);
                attrs::strip(&mut t.attrs);
            }
        }
        let is_handler = opts.hook.is_none()
            && opts.skip.is_none()
            && matches!(method.vis, Visibility::Public(_))
            && method.sig.receiver().is_some();
        if let Some(rename) = opts.rename.as_ref().filter(|_| !is_handler) {
            cx.error_spanned(
                rename,
                "`rename` names the methods a handle gets for a handler (a `pub fn` taking \
                 `&self` or `&mut self`, not skipped, not a hook); this method is not one",
            );
        }
        if let Some((hook, span)) = opts.hook {
            if hooks.iter().any(|h| h.hook == hook) {
                cx.push(syn::Error::new(
                    span,
                    format!(
                        "duplicate `#[mobile({})]` hook: an actor has at most one",
                        hook.option()
                    ),
                ));
            } else if let Some(h) = parse_hook(cx, method, hook, &self_ty) {
                hooks.push(h);
            }
            continue;
        }
        if opts.skip.is_some() || !matches!(method.vis, Visibility::Public(_)) {
            continue;
        }
        if method.sig.receiver().is_none() {
            continue;
        }
        if let Some(h) = parse_handler(cx, method, &self_ty, opts.rename) {
            if handlers.iter().any(|o: &Handler| o.variant == h.variant) {
                cx.error_spanned(
                    &method.sig.ident,
                    format!(
                        "two handlers map to the message variant `{}`: rename one",
                        h.variant
                    ),
                );
                continue;
            }
            handlers.push(h);
        }
    }
    if !item.generics.params.is_empty() {
        for impl_item in &mut item.items {
            if let ImplItem::Fn(method) = impl_item {
                bound_context_methods(method);
            }
        }
    }
    let ident = ident?;
    ok.then_some(ActorIr {
        self_ty,
        ident,
        generics: item.generics.clone(),
        params,
        instances,
        handlers,
        hooks,
        opts,
    })
}

/// A method of a generic actor that takes its `Context<Self>` gets the
/// bound `Self: ActorInstance`: only registered instantiations are actors,
/// and `Context<A>` exists for actors only.
fn bound_context_methods(method: &mut ImplItemFn) {
    let takes_context = method
        .sig
        .inputs
        .iter()
        .any(|a| matches!(a, FnArg::Typed(t) if is_context(&t.ty)));
    if takes_context {
        let span = method.sig.ident.span();
        method
            .sig
            .generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote_spanned!(span=> Self: ::mobility::ActorInstance));
    }
}

/// Is this `&mut Context<..>` (any path ending in `Context`)?
fn is_context(ty: &Type) -> bool {
    let Type::Reference(r) = ty else { return false };
    if r.mutability.is_none() {
        return false;
    }
    matches!(&*r.elem, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Context"))
}

/// `Reply<T>` (any path ending in `Reply` with one type argument): the `T`.
/// Such a handler may answer later, through `ctx.defer_reply()`.
fn reply_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    if last.ident != "Reply" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [syn::GenericArgument::Type(inner)] => Some(inner),
        _ => None,
    }
}

/// Checks the receiver: `&self` or `&mut self`.
fn check_receiver(cx: &mut Ctxt, method: &ImplItemFn, what: &str) -> bool {
    match method.sig.receiver() {
        Some(r) if r.reference.is_some() && r.colon_token.is_none() => true,
        Some(r) => {
            cx.error_spanned(r, format!("{what} takes `&self` or `&mut self`"));
            false
        }
        None => {
            cx.error_spanned(&method.sig, format!("{what} takes `&self` or `&mut self`"));
            false
        }
    }
}

fn parse_handler(
    cx: &mut Ctxt,
    method: &ImplItemFn,
    self_ty: &Type,
    rename: Option<Ident>,
) -> Option<Handler> {
    let sig = &method.sig;
    if !check_receiver(cx, method, "a handler (a `pub fn` of a `#[mobile]` impl)") {
        return None;
    }
    let renamed = rename.is_some();
    let generated = rename.unwrap_or_else(|| sig.ident.clone());
    if let Some(method) = reserved::hidden_by(&generated.to_string()) {
        let name = &generated;
        let fix = if renamed {
            "choose another name in `#[mobile(rename = \"...\")]`"
        } else {
            "rename the method, or give the handle's methods another name with \
             `#[mobile(rename = \"...\")]`, or mark it `#[mobile(skip)]` if it is not meant to \
             be a handler"
        };
        cx.error_spanned(
            name,
            format!(
                "a handler cannot be named `{name}`: it collides with `{method}`, which every \
                 `Handle` has, so `handle.{name}(..)` would call `{method}` and never this \
                 handler; {fix}"
            ),
        );
    }
    let mut rejected = false;
    if !sig.generics.params.is_empty() {
        cx.error_spanned(
            &sig.generics,
            "generic handlers are not supported: a message carries concrete types; use concrete \
             argument types (or an enum), or mark the method `#[mobile(skip)]`",
        );
        rejected = true;
    }
    let typed: Vec<_> = sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let mut args = Vec::new();
    let mut ctx = false;
    for (i, t) in typed.iter().enumerate() {
        if is_context(&t.ty) {
            if i + 1 == typed.len() {
                ctx = true;
            } else {
                cx.error_spanned(&t.ty, "the `&mut Context<Self>` parameter must come last");
                rejected = true;
            }
            continue;
        }
        if checks::check_type(cx, &t.ty, Role::Argument).rejected {
            rejected = true;
        }
        let name = match &*t.pat {
            Pat::Ident(p) if p.subpat.is_none() && p.ident != "self" => {
                let s = p.ident.to_string();
                if s.starts_with("__") {
                    format_ident!("arg{}", i)
                } else {
                    p.ident.clone()
                }
            }
            _ => format_ident!("arg{}", i),
        };
        args.push(Arg {
            name,
            ty: util::replace_self(&t.ty, self_ty),
        });
    }
    let (ret, reply_rejected, deferred) = match &sig.output {
        ReturnType::Default => (syn::parse_quote!(()), false, false),
        ReturnType::Type(_, ty) => {
            let (ty, deferred) = match reply_inner(ty) {
                Some(inner) => (inner, true),
                None => (&**ty, false),
            };
            let bad = checks::check_type(cx, ty, Role::Reply).rejected;
            (util::replace_self(ty, self_ty), bad, deferred)
        }
    };
    let variant = format_ident!(
        "{}",
        util::upper_camel(&generated.to_string()),
        span = generated.span()
    );
    Some(Handler {
        name: sig.ident.clone(),
        method: generated,
        variant,
        docs: util::docs(&method.attrs),
        args,
        ctx,
        is_async: sig.asyncness.is_some(),
        ret,
        deferred,
        rejected: rejected || reply_rejected,
        reply_rejected,
        generics: sig.generics.clone(),
    })
}

fn parse_hook(cx: &mut Ctxt, method: &ImplItemFn, hook: Hook, _self_ty: &Type) -> Option<HookFn> {
    let sig = &method.sig;
    let what = format!("a `#[mobile({})]` hook", hook.option());
    if !check_receiver(cx, method, &what) {
        return None;
    }
    let typed: Vec<_> = sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let ctx = match typed.as_slice() {
        [] => false,
        [t] if is_context(&t.ty) => true,
        _ => {
            cx.error_spanned(
                &sig.inputs,
                format!("{what} takes `&mut self` and optionally `ctx: &mut Context<Self>`, nothing else"),
            );
            return None;
        }
    };
    if !sig.generics.params.is_empty() {
        cx.error_spanned(&sig.generics, format!("{what} cannot be generic"));
        return None;
    }
    let returns = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) if hook == Hook::Arrive => Some(ty.span()),
        ReturnType::Type(_, ty) => {
            cx.error_spanned(
                ty,
                format!("{what} returns nothing (only `on_arrive` may return `Result<(), E>`)"),
            );
            return None;
        }
    };
    Some(HookFn {
        hook,
        name: sig.ident.clone(),
        ctx,
        is_async: sig.asyncness.is_some(),
        returns,
    })
}
