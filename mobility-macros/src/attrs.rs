//! The options of `#[mobile(...)]`, wherever it appears.

use crate::ctxt::Ctxt;
use syn::parse::Parse;
use syn::{Attribute, LitStr};

/// A lifecycle hook.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Hook {
    Start,
    Depart,
    Arrive,
    Stop,
    Enter,
}

impl Hook {
    pub(crate) fn option(self) -> &'static str {
        match self {
            Hook::Start => "on_start",
            Hook::Depart => "on_depart",
            Hook::Arrive => "on_arrive",
            Hook::Stop => "on_stop",
            Hook::Enter => "on_enter",
        }
    }
}

/// Options found on a field, variant, method or argument.
#[derive(Default)]
pub(crate) struct ItemOpts {
    /// `#[mobile(skip)]`.
    pub(crate) skip: Option<proc_macro2::Span>,
    /// `#[mobile(on_start)]` and friends, with the span of the option.
    pub(crate) hook: Option<(Hook, proc_macro2::Span)>,
    /// `#[mobile(state)]`: the field that holds a state machine's state.
    pub(crate) state: Option<proc_macro2::Span>,
    /// `#[mobile(rename = "...")]` on a handler: the name of its methods on
    /// the handle (and of its message), instead of the method's own.
    pub(crate) rename: Option<syn::Ident>,
}

/// What a place accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Field,
    Method,
    Argument,
    Variant,
}

/// Is this attribute ours?
pub(crate) fn is_mobile(attr: &Attribute) -> bool {
    attr.path().is_ident("mobile")
}

/// Removes our attributes from a list (they are inert once read).
pub(crate) fn strip(attrs: &mut Vec<Attribute>) {
    attrs.retain(|a| !is_mobile(a));
}

/// Reads the `#[mobile(...)]` attributes of one place.
pub(crate) fn parse_item_opts(cx: &mut Ctxt, attrs: &[Attribute], place: Place) -> ItemOpts {
    let mut opts = ItemOpts::default();
    for attr in attrs.iter().filter(|a| is_mobile(a)) {
        let res = attr.parse_nested_meta(|meta| {
            let span = meta.path.get_ident().map(|i| i.span());
            let name = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            match (name.as_str(), place) {
                ("skip", Place::Field | Place::Method) => {
                    if opts.skip.is_some() {
                        return Err(meta.error("duplicate `skip` option"));
                    }
                    opts.skip = span;
                    Ok(())
                }
                ("skip", Place::Argument) => Err(meta.error(
                    "a handler argument cannot be skipped: every argument travels in the message; \
                     remove the argument or `#[mobile(skip)]` the whole method",
                )),
                ("rename", Place::Method) => {
                    let lit: LitStr = meta.value()?.parse()?;
                    let ident = syn::parse_str::<syn::Ident>(&lit.value())
                        .ok()
                        .filter(|i| !i.to_string().starts_with("r#"))
                        .ok_or_else(|| {
                            syn::Error::new(
                                lit.span(),
                                "`rename` takes the name of a method, like \"account_id\"",
                            )
                        })?;
                    if opts.rename.is_some() {
                        return Err(meta.error("duplicate `rename` option"));
                    }
                    opts.rename = Some(syn::Ident::new(&ident.to_string(), lit.span()));
                    Ok(())
                }
                ("state", Place::Field) => {
                    if opts.state.is_some() {
                        return Err(meta.error("duplicate `state` option"));
                    }
                    opts.state = span;
                    Ok(())
                }
                (
                    "on_start" | "on_depart" | "on_arrive" | "on_stop" | "on_enter",
                    Place::Method,
                ) => {
                    let hook = match name.as_str() {
                        "on_start" => Hook::Start,
                        "on_depart" => Hook::Depart,
                        "on_arrive" => Hook::Arrive,
                        "on_enter" => Hook::Enter,
                        _ => Hook::Stop,
                    };
                    if opts.hook.is_some() {
                        return Err(meta.error("a method can be only one lifecycle hook"));
                    }
                    opts.hook = span.map(|s| (hook, s));
                    Ok(())
                }
                _ => Err(meta.error(unknown_option_message(place))),
            }
        });
        if let Err(e) = res {
            cx.push(e);
        }
    }
    opts
}

fn unknown_option_message(place: Place) -> &'static str {
    match place {
        Place::Field => {
            "unknown `#[mobile]` option on a field: expected `#[mobile(skip)]` or \
             `#[mobile(state)]`"
        }
        Place::Method => {
            "unknown `#[mobile]` option on a method: expected `skip`, `rename = \"...\"`, \
             `on_start`, `on_depart`, `on_arrive`, `on_stop` or `on_enter`"
        }
        Place::Argument => "`#[mobile]` takes no option on a handler argument",
        Place::Variant => {
            "`#[mobile]` takes no option on an enum variant (put `skip` on its fields)"
        }
    }
}

/// Options of `#[mobile(...)]` on the impl block.
#[derive(Default)]
pub(crate) struct ImplOpts {
    /// `tag = "..."`: the type tag on the wire.
    pub(crate) tag: Option<LitStr>,
    /// `instances(Cache<u64>, Cache<String> = "tag")`: the registered
    /// instantiations of a generic actor, with the span of the option.
    pub(crate) instances: Option<(proc_macro2::Span, Vec<InstanceOpt>)>,
    /// `version = N`: the actor type's current version (1 when absent).
    pub(crate) version: Option<(u32, syn::LitInt)>,
}

/// One entry of `instances(...)`: a concrete type and its optional tag.
pub(crate) struct InstanceOpt {
    pub(crate) ty: syn::Type,
    pub(crate) tag: Option<LitStr>,
}

impl syn::parse::Parse for InstanceOpt {
    fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<Self> {
        let ty = input.parse()?;
        let tag = if input.peek(syn::Token![=]) {
            input.parse::<syn::Token![=]>()?;
            Some(parse_tag(input.parse()?)?)
        } else {
            None
        };
        Ok(InstanceOpt { ty, tag })
    }
}

fn parse_tag(lit: LitStr) -> syn::Result<LitStr> {
    if lit.value().is_empty() {
        return Err(syn::Error::new(lit.span(), "the type tag cannot be empty"));
    }
    Ok(lit)
}

/// Parses the arguments of the attribute on an impl block.
pub(crate) fn parse_impl_opts(cx: &mut Ctxt, args: proc_macro2::TokenStream) -> ImplOpts {
    let mut opts = ImplOpts::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("tag") {
            let lit = parse_tag(meta.value()?.parse()?)?;
            if opts.tag.is_some() {
                return Err(meta.error("duplicate `tag` option"));
            }
            opts.tag = Some(lit);
            Ok(())
        } else if meta.path.is_ident("instances") {
            let content;
            syn::parenthesized!(content in meta.input);
            let list = content.parse_terminated(InstanceOpt::parse, syn::Token![,])?;
            if opts.instances.is_some() {
                return Err(meta.error("duplicate `instances` option: list them all in one"));
            }
            let span = syn::spanned::Spanned::span(&meta.path);
            opts.instances = Some((span, list.into_iter().collect()));
            Ok(())
        } else if meta.path.is_ident("version") {
            let lit: syn::LitInt = meta.value()?.parse()?;
            let n = crate::versions::parse_version(&lit)?;
            if opts.version.is_some() {
                return Err(meta.error("duplicate `version` option"));
            }
            opts.version = Some((n, lit));
            Ok(())
        } else {
            Err(meta.error(
                "unknown `#[mobile]` option on an impl block: expected `tag = \"...\"`, \
                 `version = N`, or `instances(...)` for a generic actor",
            ))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        cx.push(e);
    }
    opts
}
