//! Syntactic rejections: types that can never migrate, recognized in the
//! token tree and reported with `syn::Error` at their span with a tailored
//! message. Everything else is left to the spanned assertions built by
//! [`assertion`] (see also `probe.rs`), one per place, whose trait carries a
//! diagnostic fitting that place.

use crate::ctxt::Ctxt;
use proc_macro2::{TokenStream, TokenTree};
use quote::{quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{GenericArgument, Ident, PathArguments, ReturnType, Type};

/// Where a type appears: it decides the fix we suggest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Field,
    Argument,
    Reply,
}

impl Role {
    /// What cannot be done with such a type here.
    fn cannot(self) -> &'static str {
        match self {
            Role::Field => "cannot migrate",
            Role::Argument => "cannot travel in a message",
            Role::Reply => "cannot travel back to the caller",
        }
    }

    /// The verb of the fix: what the user does with the replacement.
    fn give(self) -> &'static str {
        match self {
            Role::Field => "store",
            Role::Argument => "pass",
            Role::Reply => "return",
        }
    }

    /// The other fix, only for a field: leave it behind.
    fn or_skip(self) -> &'static str {
        match self {
            Role::Field => ", or mark the field `#[mobile(skip)]` to rebuild it on arrival",
            Role::Argument | Role::Reply => "",
        }
    }
}

/// What the checks found in one type.
#[derive(Default, Clone, Copy)]
pub(crate) struct Found {
    /// At least one error was reported.
    pub(crate) rejected: bool,
    /// A reference was among them (then a lifetime parameter on the type is
    /// the same mistake, not a second one).
    pub(crate) reference: bool,
    /// The rejected part makes the type `!Send` or `!Sync`.
    pub(crate) breaks_auto_traits: bool,
}

impl Found {
    pub(crate) fn merge(&mut self, other: Found) {
        self.rejected |= other.rejected;
        self.reference |= other.reference;
        self.breaks_auto_traits |= other.breaks_auto_traits;
    }
}

/// Reports every part of `ty` that cannot migrate.
pub(crate) fn check_type(cx: &mut Ctxt, ty: &Type, role: Role) -> Found {
    let mut found = Found::default();
    walk(cx, ty, role, &mut found);
    found
}

fn reject(cx: &mut Ctxt, found: &mut Found, tokens: &dyn quote::ToTokens, msg: String) {
    found.rejected = true;
    cx.push(syn::Error::new_spanned(tokens.to_token_stream(), msg));
}

fn walk(cx: &mut Ctxt, ty: &Type, role: Role, found: &mut Found) {
    match ty {
        Type::Ptr(_) => {
            found.breaks_auto_traits = true;
            let msg = format!(
                "a raw pointer {}: its address means nothing on another node; {} an owned value \
                 (`Box<T>`, `Vec<T>`){}",
                role.cannot(),
                role.give(),
                role.or_skip()
            );
            reject(cx, found, ty, msg);
        }
        Type::Reference(_) => {
            found.reference = true;
            let what = match role {
                Role::Field => "a mobile value must own its data",
                Role::Argument => "a handler argument travels in a message and must own its data",
                Role::Reply => "a reply travels back to the caller and must own its data",
            };
            let mut msg = format!(
                "a reference cannot migrate: {what}; use an owned type (`String` for `&str`, \
                 `Vec<T>` for `&[T]`, `T` for `&T`)"
            );
            if role == Role::Field {
                msg.push_str(", or mark the field `#[mobile(skip)]`");
            }
            reject(cx, found, ty, msg);
        }
        Type::ImplTrait(_) => {
            let msg = match role {
                Role::Reply => {
                    "an `impl Trait` reply cannot travel back to the caller: return a concrete, \
                     serializable type"
                }
                _ => {
                    "an `impl Trait` argument cannot travel in a message: take a concrete, \
                     serializable type"
                }
            };
            reject(cx, found, ty, msg.to_owned());
        }
        Type::BareFn(_) => {
            let msg = format!(
                "a function pointer {}: code never travels between nodes; {} an enum naming the \
                 behaviour{}",
                role.cannot(),
                role.give(),
                role.or_skip()
            );
            reject(cx, found, ty, msg);
        }
        Type::Array(a) => walk(cx, &a.elem, role, found),
        Type::Slice(s) => walk(cx, &s.elem, role, found),
        Type::Group(g) => walk(cx, &g.elem, role, found),
        Type::Paren(p) => walk(cx, &p.elem, role, found),
        Type::Tuple(t) => t.elems.iter().for_each(|e| walk(cx, e, role, found)),
        Type::Path(p) => {
            if let Some(q) = &p.qself {
                walk(cx, &q.ty, role, found);
            }
            let path = &p.path;
            let local = path.leading_colon.is_none()
                && path.segments.len() > 1
                && path
                    .segments
                    .first()
                    .is_some_and(|s| s.ident == "crate" || s.ident == "self" || s.ident == "super");
            if let Some(last) = path.segments.last() {
                let generic = !matches!(last.arguments, PathArguments::None);
                if !local {
                    if let Some((msg, auto)) = known(&last.ident.to_string(), generic, role) {
                        found.breaks_auto_traits |= auto;
                        reject(cx, found, ty, msg);
                        return;
                    }
                }
            }
            for seg in &path.segments {
                match &seg.arguments {
                    PathArguments::AngleBracketed(args) => {
                        for arg in &args.args {
                            if let GenericArgument::Type(t) = arg {
                                walk(cx, t, role, found);
                            }
                        }
                    }
                    PathArguments::Parenthesized(args) => {
                        args.inputs.iter().for_each(|t| walk(cx, t, role, found));
                        if let ReturnType::Type(_, t) = &args.output {
                            walk(cx, t, role, found);
                        }
                    }
                    PathArguments::None => {}
                }
            }
        }
        _ => {}
    }
}

/// Well-known types that never migrate, by last path segment. The generic
/// ones only match with generic arguments (a user's own `Cell` struct is not
/// `std::cell::Cell<T>`); a path starting with `crate::`, `self::` or
/// `super::` never matches. Returns the message and whether the type breaks
/// `Send`/`Sync`.
fn known(name: &str, generic: bool, role: Role) -> Option<(String, bool)> {
    let (cannot, give, or_skip) = (role.cannot(), role.give(), role.or_skip());
    let field = role == Role::Field;
    let msg = match (name, generic) {
        ("Rc", true) => {
            let copied = if field {
                "its value is copied, not shared, after a move"
            } else {
                "the receiver gets a copy of the value, not a shared one"
            };
            return Some((
                format!("`Rc` is not `Send` and {cannot}: use `Arc` ({copied}){or_skip}"),
                true,
            ));
        }
        ("Weak", true) => {
            return Some((
                format!(
                    "a `Weak` pointer does not own its value and {cannot}: {give} the value \
                     (or an `Arc`) itself{or_skip}"
                ),
                true,
            ))
        }
        ("RefCell" | "Cell", true) => {
            let msg = if field {
                format!(
                    "`{name}` is not `Sync` and cannot be part of a mobile actor: handlers get \
                     `&mut self`, so store the value directly without `{name}`{or_skip}"
                )
            } else {
                format!("`{name}` is not `Sync` and {cannot}: {give} the value itself, without `{name}`")
            };
            return Some((msg, true));
        }
        ("File", false) => {
            if field {
                "a `File` is an OS resource and cannot migrate: mark the field `#[mobile(skip)]` \
                 (e.g. `Option<File>`) and reopen it in `#[mobile(on_arrive)]`"
                    .to_owned()
            } else {
                format!("a `File` is an OS resource and {cannot}: {give} its path instead")
            }
        }
        ("TcpStream" | "TcpListener" | "UdpSocket" | "UnixStream" | "UnixListener", false) => {
            if field {
                format!(
                    "a socket (`{name}`) is an OS resource and cannot migrate: mark the field \
                     `#[mobile(skip)]` (e.g. `Option<{name}>`) and reconnect in \
                     `#[mobile(on_arrive)]`"
                )
            } else {
                format!(
                    "a socket (`{name}`) is an OS resource and {cannot}: {give} its address \
                     instead"
                )
            }
        }
        (
            "Sender"
            | "Receiver"
            | "SyncSender"
            | "UnboundedSender"
            | "UnboundedReceiver"
            | "WeakSender"
            | "WeakUnboundedSender",
            true,
        ) => {
            let keep = if field { "keep" } else { give };
            format!(
                "channel ends (`{name}`) {cannot}: {keep} a `Handle` to an actor instead{or_skip}"
            )
        }
        ("JoinHandle", true) => {
            let keep = if field { "keep" } else { give };
            format!(
                "a `JoinHandle` is bound to a task on this node and {cannot}: make the task an \
                 actor and {keep} its `Handle`{or_skip}"
            )
        }
        _ => return None,
    };
    Some((msg, false))
}

/// A lifetime parameter on a mobile type or an actor.
pub(crate) fn lifetime_message() -> &'static str {
    "a mobile type cannot borrow: lifetime parameters are not allowed, as a migrating value \
     must own its data (use owned types such as `String` or `Vec<T>`)"
}

/// The spanned compile-time assertion that `ty`, found at `role`, migrates.
/// The two sides of a `Result<T, E>` reply are asserted apart, so an error
/// type that cannot travel is named as such. (Type parameters are asserted
/// on their own, see [`checks_fn`].)
pub(crate) fn assertion(ty: &Type, role: Role) -> TokenStream {
    if role == Role::Reply {
        if let Some([ok, err]) = result_args(ty) {
            let mut out = assertion(ok, Role::Reply);
            out.extend(quote_spanned!(err.span()=>
                ::mobility::__private::assert_reply_error::<#err>();
            ));
            return out;
        }
    }
    let check = match role {
        Role::Field => "assert_field",
        Role::Argument => "assert_argument",
        Role::Reply => "assert_reply",
    };
    let check = Ident::new(check, proc_macro2::Span::call_site());
    quote_spanned!(ty.span()=> ::mobility::__private::#check::<#ty>();)
}

/// `Result<T, E>` (any path ending in `Result` with two type arguments).
fn result_args(ty: &Type) -> Option<[&Type; 2]> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last().filter(|s| s.ident == "Result")?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [GenericArgument::Type(ok), GenericArgument::Type(err)] => Some([ok, err]),
        _ => None,
    }
}

/// Does a type's token tree name one of `params`?
pub(crate) fn mentions(tokens: TokenStream, params: &[Ident]) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(i) => params.contains(&i),
        TokenTree::Group(g) => mentions(g.stream(), params),
        _ => false,
    })
}

/// The functions holding an item's assertions, generic like the item.
///
/// Each type parameter used by the `types` that travel must be
/// `Migratable`: asserted alone, at its first use, so that a missing bound
/// is one error whose fix rustc suggests on the parameter itself. The
/// assertions of the types then assume that bound, so they only fail for
/// what is wrong around the parameters (a `Mutex<T>`), with the message of
/// their place.
pub(crate) fn checks_fn(
    generics: &syn::Generics,
    types: &[&Type],
    asserts: &TokenStream,
) -> TokenStream {
    let (decl, _, where_clause) = generics.split_for_impl();
    let params: Vec<&Ident> = generics.type_params().map(|p| &p.ident).collect();
    let mut param_asserts = TokenStream::new();
    for param in &params {
        let first_use = types
            .iter()
            .find(|ty| mentions(ty.to_token_stream(), std::slice::from_ref(*param)));
        if let Some(ty) = first_use {
            param_asserts.extend(quote_spanned!(ty.span()=>
                ::mobility::__private::assert_param::<#param>();
            ));
        }
    }
    let mut bounded = generics.clone();
    let predicates = &mut bounded.make_where_clause().predicates;
    for param in &params {
        predicates.push(syn::parse_quote!(#param: ::mobility::Migratable));
    }
    let bounded_where = &bounded.where_clause;
    quote::quote! {
        #[allow(dead_code, clippy::extra_unused_type_parameters)]
        fn __mobility_check_params #decl () #where_clause {
            #param_asserts
        }
        #[allow(dead_code, clippy::extra_unused_type_parameters)]
        fn __mobility_checks #decl () #bounded_where {
            #asserts
        }
    }
}
