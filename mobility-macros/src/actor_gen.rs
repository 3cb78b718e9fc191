//! Code generation for `#[mobile]` on an impl block: the message enum, the
//! typed request/reply and fire-and-forget methods, `impl Actor` and the
//! registration of the type.

use crate::attrs::Hook;
use crate::checks::{self, Role};
use crate::handlers::{ActorIr, Handler, HookFn};
use crate::instances;
use crate::probe;
use crate::util;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::{parse_quote, GenericParam, Generics, Ident};

/// Names of the generated types.
struct Names {
    msg: Ident,
    calls: Ident,
    tell: Ident,
}

/// The generics of the generated items, from those of the impl block (all
/// empty for a non-generic actor).
struct Gen {
    /// `<T: Migratable, const N: usize>`: parameters with their bounds.
    decl: TokenStream,
    /// `<T, N>`: as arguments.
    args: TokenStream,
    /// The parameters' names, `T, N`.
    names: Vec<Ident>,
    /// The impl block's `where` clause.
    user_where: TokenStream,
    /// The same, plus `Self: ActorInstance` for a generic actor: only its
    /// registered instantiations are actors.
    actor_where: TokenStream,
    /// `(T,)`: the type parameters, for a `PhantomData` (`None` if there is none).
    phantom: Option<TokenStream>,
}

impl Gen {
    fn new(ir: &ActorIr) -> Gen {
        let generics = &ir.generics;
        let (decl, args, where_clause) = generics.split_for_impl();
        let names = generics
            .params
            .iter()
            .filter_map(|p| match p {
                GenericParam::Type(t) => Some(t.ident.clone()),
                GenericParam::Const(c) => Some(c.ident.clone()),
                GenericParam::Lifetime(_) => None,
            })
            .collect();
        let self_ty = &ir.self_ty;
        let predicates = where_clause.map(|w| &w.predicates);
        let extra =
            (!generics.params.is_empty()).then(|| quote!(#self_ty: ::mobility::ActorInstance));
        let actor_where = match (predicates, &extra) {
            (Some(p), _) if !p.is_empty() => {
                let sep = (!p.empty_or_trailing()).then(|| quote!(,));
                quote!(where #p #sep #extra)
            }
            (_, Some(extra)) => quote!(where #extra),
            _ => TokenStream::new(),
        };
        let params = &ir.params;
        Gen {
            decl: quote!(#decl),
            args: quote!(#args),
            names,
            user_where: quote!(#where_clause),
            actor_where,
            phantom: (!params.is_empty()).then(|| quote!((#(#params,)*))),
        }
    }

    /// The generics of the fire-and-forget type: the actor's plus the sink.
    fn with_sink(ir: &ActorIr) -> Generics {
        let mut generics = ir.generics.clone();
        generics.params.push(parse_quote!(__S));
        generics
    }

    /// `CacheTell<T, __S>`: the fire-and-forget type over the sink `__S`.
    fn tell_ty(&self, tell: &Ident) -> TokenStream {
        let names = &self.names;
        quote!(#tell<#(#names,)* __S>)
    }
}

/// The hidden variant of a generic actor's message enum that uses its type
/// parameters (a handler need not); it can never be built.
const PARAMS_VARIANT: &str = "__MobilityParams";

/// Generates everything that goes next to the user's impl block.
pub(crate) fn generate(ir: &ActorIr) -> TokenStream {
    let ident = &ir.ident;
    let names = Names {
        msg: format_ident!("{}Msg", ident),
        calls: format_ident!("{}Calls", ident),
        tell: format_ident!("{}Tell", ident),
    };
    let gen = Gen::new(ir);
    let live: Vec<&Handler> = ir.handlers.iter().filter(|h| !h.rejected).collect();
    let (msg_enum, msg_helpers) = msg_enum(ir, &names, &gen, &live);
    let types = public_types(ir, &names, &gen);
    let calls = calls_methods(ir, &names, &gen);
    let tell = tell_methods(ir, &names, &gen);
    let actor = actor_impl(ir, &names, &gen, &live);
    let field_probes = probe::field_probes();
    let reply_probes = probe::reply_probes();
    let travelling: Vec<&syn::Type> = live
        .iter()
        .flat_map(|h| h.args.iter().map(|a| &a.ty).chain([&h.ret]))
        .collect();
    let checks_fn = checks::checks_fn(&ir.generics, &travelling, &asserts(&live));
    let registrations = instances::registrations(&ir.self_ty, ident, &ir.generics, &ir.instances);
    let Gen {
        decl,
        args,
        user_where,
        ..
    } = &gen;
    let msg = &names.msg;
    quote! {
        #msg_enum
        #types

        #[doc(hidden)]
        #[allow(non_upper_case_globals, non_snake_case, clippy::all)]
        const _: () = {
            #field_probes
            impl #decl #msg #args #user_where {
                #msg_helpers
            }
            #checks_fn
        };

        // Not hidden: rustdoc shows the typed methods on the generated types
        // and `impl Actor` on the actor.
        #[allow(non_upper_case_globals, non_snake_case, clippy::all)]
        const _: () = {
            #reply_probes
            #calls
            #tell
            #actor
        };

        #registrations
    }
}

fn msg_enum(
    ir: &ActorIr,
    names: &Names,
    gen: &Gen,
    live: &[&Handler],
) -> (TokenStream, TokenStream) {
    let msg = &names.msg;
    let actor = ir.ident.to_string();
    // serde calls the helpers by path: `CacheMsg::<T>::__mobility_ser_0`.
    let msg_path = if gen.names.is_empty() {
        msg.to_string()
    } else {
        let names: Vec<String> = gen.names.iter().map(ToString::to_string).collect();
        format!("{msg}::<{}>", names.join(","))
    };
    let mut variants = TokenStream::new();
    let mut helpers = TokenStream::new();
    let mut index = 0usize;
    for h in live {
        let variant = &h.variant;
        let handler = h.name.to_string();
        let vdoc = format!("Message of the handler `{actor}::{handler}`.");
        let mut fields = TokenStream::new();
        for arg in &h.args {
            let name = &arg.name;
            let ty = &arg.ty;
            let fdoc = format!("Argument `{name}`.");
            let serde_attr = if util::is_bytes(ty) {
                quote!(#[serde(with = "::mobility::__private::serde_bytes")])
            } else {
                let ser_name = format_ident!("__mobility_ser_{}", index);
                let de_name = format_ident!("__mobility_de_{}", index);
                let ser = format!("{msg_path}::{ser_name}");
                let de = format!("{msg_path}::{de_name}");
                helpers.extend(quote! {
                    #[allow(dead_code)]
                    fn #ser_name<__S: ::mobility::__private::serde::Serializer>(value: &#ty, serializer: __S)
                        -> ::core::result::Result<__S::Ok, __S::Error>
                    {
                        (&&__MobilitySer(value)).__mobility_ser(serializer)
                    }
                    #[allow(dead_code)]
                    fn #de_name<'de, __D: ::mobility::__private::serde::Deserializer<'de>>(deserializer: __D)
                        -> ::core::result::Result<#ty, __D::Error>
                    {
                        (&&__MobilityDe::<#ty>(::core::marker::PhantomData)).__mobility_de(deserializer)
                    }
                });
                quote!(#[serde(serialize_with = #ser, deserialize_with = #de)])
            };
            index += 1;
            fields.extend(quote! {
                #[doc = #fdoc]
                #serde_attr
                #name: #ty,
            });
        }
        variants.extend(quote! {
            #[doc = #vdoc]
            #variant { #fields },
        });
    }
    if let Some(phantom) = &gen.phantom {
        let marker = Ident::new(PARAMS_VARIANT, proc_macro2::Span::call_site());
        variants.extend(quote! {
            #[doc(hidden)]
            #[serde(skip)]
            #marker(::core::convert::Infallible, ::core::marker::PhantomData<fn() -> #phantom>),
        });
    }
    let doc = format!(
        "The messages of the mobile actor `{actor}`: one variant per handler (generated by `#[mobile]`)."
    );
    let Gen {
        decl, user_where, ..
    } = gen;
    let item = quote! {
        #[doc = #doc]
        #[derive(::mobility::__private::serde::Serialize, ::mobility::__private::serde::Deserialize)]
        #[serde(crate = "::mobility::__private::serde")]
        pub enum #msg #decl #user_where {
            #variants
        }
    };
    (item, helpers)
}

fn public_types(ir: &ActorIr, names: &Names, gen: &Gen) -> TokenStream {
    let Names { msg, calls, tell } = names;
    let Gen {
        decl,
        args,
        user_where,
        actor_where,
        phantom,
        ..
    } = gen;
    let self_ty = &ir.self_ty;
    let actor = ir.ident.to_string();
    let calls_doc = format!(
        "The request/reply methods of the mobile actor `{actor}`, called on a `Handle<{actor}>` \
         (which derefs to this type): `handle.method(..).await` sends the message to the actor, \
         wherever it lives, and waits for its reply. Generated by `#[mobile]`."
    );
    let tell_doc = format!(
        "The fire-and-forget methods of the mobile actor `{actor}` over a message sink: \
         `handle.tell().method(..)` queues the message and returns at once; \
         `ctx.send_after(delay).method(..)` and the other timers of a `Context` send it later. \
         Generated by `#[mobile]`."
    );
    let calls_name = calls.to_string();
    let tell_name = tell.to_string();
    let mut variants: Vec<TokenStream> = ir
        .handlers
        .iter()
        .filter(|h| !h.rejected)
        .map(|h| {
            let v = &h.variant;
            let s = v.to_string();
            quote!(#msg::#v { .. } => #s,)
        })
        .collect();
    if phantom.is_some() {
        let marker = Ident::new(PARAMS_VARIANT, proc_macro2::Span::call_site());
        variants.push(quote!(#msg::#marker(..) => #PARAMS_VARIANT,));
    }
    let with_sink = Gen::with_sink(ir);
    let (tell_decl, _, _) = with_sink.split_for_impl();
    let tell_ty = gen.tell_ty(tell);
    let marker_field = phantom
        .as_ref()
        .map(|p| quote!(_params: ::core::marker::PhantomData<fn() -> #p>,));
    quote! {
        #[doc = #calls_doc]
        pub struct #calls #decl #actor_where {
            core: ::mobility::__private::HandleCore<#self_ty>,
        }

        #[doc = #tell_doc]
        pub struct #tell #tell_decl #user_where {
            sink: __S,
            #marker_field
        }

        const _: () = {
            impl #decl ::mobility::__private::Calls<#self_ty> for #calls #args #actor_where {
                fn from_core(core: ::mobility::__private::HandleCore<#self_ty>) -> Self {
                    #calls { core }
                }
                fn core(&self) -> &::mobility::__private::HandleCore<#self_ty> {
                    &self.core
                }
            }
            impl #decl ::core::fmt::Debug for #calls #args #actor_where {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.write_str(#calls_name)
                }
            }
            impl #tell_decl ::core::fmt::Debug for #tell_ty #user_where {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.write_str(#tell_name)
                }
            }
            impl #decl ::core::fmt::Debug for #msg #args #user_where {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    #[allow(unreachable_code)]
                    f.write_str(match *self { #(#variants)* })
                }
            }
        };
    }
}

/// `name(a, b)` argument lists: (declarations, struct-literal fields).
fn arg_lists(h: &Handler) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let decls = h
        .args
        .iter()
        .map(|a| {
            let (n, t) = (&a.name, &a.ty);
            if h.rejected {
                quote!(_: #t)
            } else {
                quote!(#n: #t)
            }
        })
        .collect();
    let fields = h.args.iter().map(|a| {
        let n = &a.name;
        quote!(#n)
    });
    (decls, fields.collect())
}

fn calls_methods(ir: &ActorIr, names: &Names, gen: &Gen) -> TokenStream {
    let Names { msg, calls, .. } = names;
    let Gen {
        decl,
        args,
        actor_where,
        ..
    } = gen;
    let methods = ir.handlers.iter().map(|h| {
        let (name, variant) = (&h.method, &h.variant);
        let (decls, fields) = arg_lists(h);
        let ret = if h.reply_rejected {
            syn::parse_quote!(())
        } else {
            h.ret.clone()
        };
        let generics = &h.generics;
        let where_clause = &h.generics.where_clause;
        let doc = method_doc(
            &h.docs,
            &format!(
                "Request/reply: sends `{name}` to the actor, wherever it lives, and waits for \
                 the handler's return value. Returns `Err(mobility::Error)` when the message \
                 cannot be delivered or answered (the actor is down, the call timed out, ...)."
            ),
        );
        let body = if h.rejected {
            quote!(::core::unreachable!("rejected by #[mobile]"))
        } else {
            quote! {
                let fut = (&&__MobilityReply::<#ret>(::core::marker::PhantomData))
                    .__mobility_request(&self.core, #msg::#variant { #(#fields),* });
                fut.await
            }
        };
        quote! {
            #doc
            pub async fn #name #generics (&self, #(#decls),*)
                -> ::core::result::Result<#ret, ::mobility::Error> #where_clause
            {
                #body
            }
        }
    });
    quote! {
        impl #decl #calls #args #actor_where {
            #(#methods)*
        }
    }
}

fn tell_methods(ir: &ActorIr, names: &Names, gen: &Gen) -> TokenStream {
    let Names { msg, tell, .. } = names;
    let self_ty = &ir.self_ty;
    let methods = ir.handlers.iter().map(|h| {
        let (name, variant) = (&h.method, &h.variant);
        let (decls, fields) = arg_lists(h);
        let generics = &h.generics;
        let where_clause = &h.generics.where_clause;
        let doc = method_doc(
            &h.docs,
            &format!(
                "Fire-and-forget: queues `{name}` for the actor and returns at once, without its \
                 reply (`handle.tell().{name}(..)` returns `Result<(), mobility::Error>`; a \
                 timer such as `ctx.send_after(delay).{name}(..)` returns its `TimerId`)."
            ),
        );
        let body = if h.rejected {
            quote!(::core::unreachable!("rejected by #[mobile]"))
        } else {
            quote!(self.sink.put(#msg::#variant { #(#fields),* }))
        };
        quote! {
            #doc
            pub fn #name #generics (self, #(#decls),*)
                -> <__S as ::mobility::__private::MessageSink<#self_ty>>::Output #where_clause
            {
                #body
            }
        }
    });
    let mut with_sink = Gen::with_sink(ir);
    if let Some(GenericParam::Type(sink)) = with_sink.params.last_mut() {
        sink.bounds
            .push(parse_quote!(::mobility::__private::MessageSink<#self_ty>));
    }
    let (decl, _, _) = with_sink.split_for_impl();
    let tell_ty = gen.tell_ty(tell);
    let actor_where = &gen.actor_where;
    quote! {
        impl #decl #tell_ty #actor_where {
            #(#methods)*
        }
    }
}

fn schema_text(live: &[&Handler]) -> String {
    let mut text = String::new();
    for h in live {
        text.push_str(&h.method.to_string());
        text.push('(');
        for a in &h.args {
            text.push_str(&format!("{}:{},", a.name, util::canonical(&a.ty)));
        }
        text.push_str(if h.deferred { ")->later " } else { ")->" });
        text.push_str(&util::canonical(&h.ret));
        text.push(';');
    }
    text
}

fn asserts(live: &[&Handler]) -> TokenStream {
    let mut out = TokenStream::new();
    for h in live {
        for a in &h.args {
            out.extend(checks::assertion(&a.ty, Role::Argument));
        }
        out.extend(checks::assertion(&h.ret, Role::Reply));
    }
    out
}

fn actor_impl(ir: &ActorIr, names: &Names, gen: &Gen, live: &[&Handler]) -> TokenStream {
    let Names { msg, calls, tell } = names;
    let self_ty = &ir.self_ty;
    let ident = &ir.ident;
    let Gen {
        decl,
        args,
        actor_where,
        ..
    } = gen;
    let (version, versioned) =
        crate::versions::current(ir.opts.version.as_ref(), self_ty, decl, actor_where);
    let schema = schema_text(live);
    let state_and_messages = quote! {
        ::mobility::__private::mix_fingerprints(
            <Self as ::mobility::Mobile>::FINGERPRINT,
            ::mobility::__private::fingerprint_str(#schema),
        )
    };
    // A generic actor's tag and schema are those of each registered
    // instantiation: the schema mixes in its type arguments.
    let (tag, schema) = if !gen.names.is_empty() {
        (
            quote!(<Self as ::mobility::ActorInstance>::TYPE_TAG),
            quote!(::mobility::__private::mix_fingerprints(
                #state_and_messages,
                <Self as ::mobility::ActorInstance>::FINGERPRINT,
            )),
        )
    } else {
        let tag = match &ir.opts.tag {
            Some(lit) => quote!(#lit),
            None => {
                let name = ident.to_string();
                quote!(::core::concat!(::core::module_path!(), "::", #name))
            }
        };
        (tag, state_and_messages)
    };
    // The hidden variant of a generic actor's messages is never built.
    let marker = gen.phantom.as_ref().map(|_| {
        let marker = Ident::new(PARAMS_VARIANT, proc_macro2::Span::call_site());
        quote!(#msg::#marker(never, _) => match never {},)
    });
    let marker_ref = gen.phantom.as_ref().map(|_| {
        let marker = Ident::new(PARAMS_VARIANT, proc_macro2::Span::call_site());
        quote!(#msg::#marker(..) => false,)
    });
    let arms = live.iter().map(|h| {
        let (pattern, run) = dispatch_arm(msg, h);
        quote!(#pattern => { #run })
    });
    // Plain `fn` handlers also run at once, on the caller's task while the
    // actor is idle; `async` ones are given back to go through the mailbox.
    let arms_now = live.iter().map(|h| {
        if h.is_async {
            let variant = &h.variant;
            return quote! {
                __mobility_msg @ #msg::#variant { .. } => {
                    ::core::result::Result::Err((__mobility_msg, __mobility_reply))
                }
            };
        }
        let (pattern, run) = dispatch_arm(msg, h);
        quote!(#pattern => { #run ::core::result::Result::Ok(()) })
    });
    let runs_now = live.iter().map(|h| {
        let variant = &h.variant;
        let now = !h.is_async;
        quote!(#msg::#variant { .. } => #now,)
    });
    // Only handlers that take the context can postpone their message.
    let postponable = live.iter().map(|h| {
        let variant = &h.variant;
        let can = h.ctx;
        quote!(#msg::#variant { .. } => #can,)
    });
    let hooks = ir.hooks.iter().map(|h| hook_impl(ir, h));
    let tell_ty = gen.tell_ty(tell);
    let marker_field = gen
        .phantom
        .as_ref()
        .map(|_| quote!(_params: ::core::marker::PhantomData,));
    quote! {
        impl #decl ::mobility::Actor for #self_ty #actor_where {
            type Msg = #msg #args;
            type Calls = #calls #args;
            type Tell<__S: ::mobility::__private::MessageSink<Self>> = #tell_ty;
            const TYPE_TAG: &'static str = #tag;
            const SCHEMA: u64 = #schema;
            #version

            fn tell_with<__S: ::mobility::__private::MessageSink<Self>>(sink: __S) -> Self::Tell<__S> {
                #tell { sink, #marker_field }
            }

            fn dispatch(
                &mut self,
                msg: Self::Msg,
                __mobility_ctx: &mut ::mobility::Context<Self>,
                __mobility_reply: ::mobility::ReplyTo,
            ) -> impl ::core::future::Future<Output = ()> + ::core::marker::Send {
                async move {
                    let _ = &__mobility_ctx;
                    let _ = &__mobility_reply;
                    match msg {
                        #(#arms)*
                        #marker
                    }
                }
            }

            fn runs_now(msg: &Self::Msg) -> bool {
                #[allow(unreachable_code)]
                match *msg {
                    #(#runs_now)*
                    #marker_ref
                }
            }

            #[allow(clippy::result_large_err)]
            fn dispatch_now(
                &mut self,
                msg: Self::Msg,
                __mobility_ctx: &mut ::mobility::Context<Self>,
                __mobility_reply: ::mobility::ReplyTo,
            ) -> ::core::result::Result<(), (Self::Msg, ::mobility::ReplyTo)> {
                let _ = &__mobility_ctx;
                #[allow(unreachable_code)]
                match msg {
                    #(#arms_now)*
                    #marker
                }
            }

            fn may_postpone(msg: &Self::Msg) -> bool {
                #[allow(unreachable_code)]
                match *msg {
                    #(#postponable)*
                    #marker_ref
                }
            }

            #(#hooks)*
        }

        #versioned
    }
}

/// One handler's dispatch: the pattern binding its message's fields, and
/// the statements that run it (awaited if `async`) and send its value to
/// the reply the context holds.
fn dispatch_arm(msg: &Ident, h: &Handler) -> (TokenStream, TokenStream) {
    let (name, variant, ret) = (&h.name, &h.variant, &h.ret);
    let binds: Vec<Ident> = (0..h.args.len())
        .map(|i| format_ident!("__a{}", i))
        .collect();
    let fields = h.args.iter().zip(&binds).map(|(a, b)| {
        let n = &a.name;
        quote!(#n: #b)
    });
    let ctx = h.ctx.then(|| quote!(&mut *__mobility_ctx));
    let call_args = binds.iter().map(|b| quote!(#b)).chain(ctx);
    let awaited = h.is_async.then(|| quote!(.await));
    let send = if h.deferred {
        quote!(__mobility_send_later)
    } else {
        quote!(__mobility_send)
    };
    let pattern = quote!(#msg::#variant { #(#fields),* });
    let run = quote! {
        __mobility_ctx.__mobility_begin(__mobility_reply);
        let value = self.#name(#(#call_args),*) #awaited;
        let __mobility_reply = __mobility_ctx.__mobility_end();
        (&&__MobilityReply::<#ret>(::core::marker::PhantomData))
            .#send(__mobility_reply, value);
    };
    (pattern, run)
}

fn hook_impl(ir: &ActorIr, h: &HookFn) -> TokenStream {
    let self_ty = &ir.self_ty;
    let name = &h.name;
    let ctx = h.ctx.then(|| quote!(ctx));
    let awaited = h.is_async.then(|| quote!(.await));
    let call = quote!(<#self_ty>::#name(self, #ctx) #awaited);
    let (method, output, body) = match h.hook {
        Hook::Start => (quote!(on_start), quote!(()), quote!(#call;)),
        Hook::Depart => (quote!(on_depart), quote!(()), quote!(#call;)),
        Hook::Stop => (quote!(on_stop), quote!(()), quote!(#call;)),
        Hook::Enter => (quote!(on_enter), quote!(()), quote!(#call;)),
        Hook::Arrive => {
            let body = match h.returns {
                Some(span) => quote_spanned! {span=>
                    #call.map_err(|e| ::std::string::ToString::to_string(&e))
                },
                None => quote!(#call; ::core::result::Result::Ok(())),
            };
            (
                quote!(on_arrive),
                quote!(::core::result::Result<(), ::std::string::String>),
                body,
            )
        }
    };
    quote! {
        fn #method(&mut self, ctx: &mut ::mobility::Context<Self>)
            -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
        {
            async move {
                let _ = &ctx;
                #body
            }
        }
    }
}

/// A generated method's documentation: the handler's own doc comments,
/// then `what` the generated method does.
fn method_doc(docs: &[syn::Attribute], what: &str) -> TokenStream {
    if docs.is_empty() {
        quote!(#[doc = #what])
    } else {
        quote!(#(#docs)* #[doc = ""] #[doc = #what])
    }
}
