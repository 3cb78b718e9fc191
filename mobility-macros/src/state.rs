//! `#[mobile]` on a struct or an enum: the migratable data (and the state of
//! an actor). Parsing into a small IR, then code generation.

use crate::attrs::{self, Place};
use crate::checks::{self, Found, Role};
use crate::ctxt::Ctxt;
use crate::probe;
use crate::util;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{parse_quote, Data, DeriveInput, Fields, Type};

/// How one field travels.
enum Travel {
    /// Not migrated; rebuilt with `Default`.
    Skip,
    /// As a CBOR byte string through `serde_bytes`.
    Bytes,
    /// Through the serde implementation of its type (via the probes).
    Serde,
    /// Rejected by a syntactic check (an error was reported).
    Rejected,
}

/// One field of the type (of one variant, for an enum).
struct FieldIr {
    /// Name, or position for a tuple field.
    name: String,
    ty: Type,
    travel: Travel,
}

/// The parsed type.
struct StateIr {
    /// Index in `fields` where each variant starts, with its name (`None`
    /// for a struct) and its shape.
    parts: Vec<(Option<String>, &'static str, Vec<FieldIr>)>,
    found: Found,
    /// A lifetime parameter was reported.
    lifetime_error: bool,
    /// The field marked `#[mobile(state)]` (a struct state machine).
    state_field: Option<syn::Member>,
}

/// Expands `#[mobile]` on a struct or an enum.
pub(crate) fn expand(args: TokenStream, mut input: DeriveInput) -> TokenStream {
    let mut cx = Ctxt::default();
    let previous = crate::versions::parse_type_opts(&mut cx, args);
    let self_ty = self_type(&input);
    let ir = parse(&mut cx, &mut input, &self_ty);
    let mut out = TokenStream::new();
    let failed = ir.found.rejected || ir.lifetime_error;
    if !failed {
        add_serde_attrs(&mut input, &ir, &self_ty);
    }
    out.extend(input.to_token_stream());
    out.extend(support(&input, &ir, &self_ty, failed));
    if let Some(previous) = &previous {
        out.extend(crate::versions::older_state(&mut cx, &input, previous));
    }
    out.extend(cx.into_tokens());
    out
}

/// `Name<T, N>` as a type.
pub(crate) fn self_type(input: &DeriveInput) -> Type {
    let name = &input.ident;
    let (_, ty_generics, _) = input.generics.split_for_impl();
    parse_quote!(#name #ty_generics)
}

fn parse(cx: &mut Ctxt, input: &mut DeriveInput, self_ty: &Type) -> StateIr {
    let mut ir = StateIr {
        parts: Vec::new(),
        found: Found::default(),
        lifetime_error: false,
        state_field: None,
    };
    match &mut input.data {
        Data::Struct(s) => {
            let fields = parse_fields(
                cx,
                &mut s.fields,
                self_ty,
                &mut ir.found,
                Some(&mut ir.state_field),
            );
            ir.parts.push((None, shape(&s.fields), fields));
        }
        Data::Enum(e) => {
            for v in &mut e.variants {
                attrs::parse_item_opts(cx, &v.attrs, Place::Variant);
                attrs::strip(&mut v.attrs);
                let fields = parse_fields(cx, &mut v.fields, self_ty, &mut ir.found, None);
                ir.parts
                    .push((Some(v.ident.to_string()), shape(&v.fields), fields));
            }
        }
        Data::Union(_) => {}
    }
    if !ir.found.reference {
        for lt in input.generics.lifetimes() {
            cx.error_spanned(lt, checks::lifetime_message());
            ir.lifetime_error = true;
        }
    }
    ir
}

fn shape(fields: &Fields) -> &'static str {
    match fields {
        Fields::Named(_) => "{}",
        Fields::Unnamed(_) => "()",
        Fields::Unit => "",
    }
}

/// Reads the fields of a struct or variant; `state_field` is where a
/// struct records its `#[mobile(state)]` field (`None` in an enum variant).
fn parse_fields(
    cx: &mut Ctxt,
    fields: &mut Fields,
    self_ty: &Type,
    found: &mut Found,
    mut state_field: Option<&mut Option<syn::Member>>,
) -> Vec<FieldIr> {
    let mut out = Vec::new();
    for (i, field) in fields.iter_mut().enumerate() {
        let opts = attrs::parse_item_opts(cx, &field.attrs, Place::Field);
        attrs::strip(&mut field.attrs);
        if let Some(span) = opts.state {
            let member = field
                .ident
                .clone()
                .map_or_else(|| syn::Member::from(i), syn::Member::Named);
            match state_field.as_deref_mut() {
                None => cx.push(syn::Error::new(
                    span,
                    "`#[mobile(state)]` marks the state field of a struct; an enum is a state \
                     machine by itself (its variant is the state)",
                )),
                Some(Some(first)) => cx.push(syn::Error::new(
                    span,
                    format!(
                        "a state machine has one state: `#[mobile(state)]` is already on `{}`",
                        first.to_token_stream()
                    ),
                )),
                Some(_) if opts.skip.is_some() => {
                    cx.push(syn::Error::new(
                        span,
                        "the state field must migrate: remove `#[mobile(skip)]` from it",
                    ));
                }
                Some(slot) => *slot = Some(member),
            }
        }
        let name = field
            .ident
            .as_ref()
            .map_or_else(|| i.to_string(), ToString::to_string);
        let ty = util::replace_self(&field.ty, self_ty);
        let travel = if opts.skip.is_some() {
            Travel::Skip
        } else {
            let f = checks::check_type(cx, &field.ty, Role::Field);
            found.merge(f);
            if f.rejected {
                Travel::Rejected
            } else if util::is_bytes(&field.ty) {
                Travel::Bytes
            } else {
                Travel::Serde
            }
        };
        out.push(FieldIr { name, ty, travel });
    }
    out
}

/// Adds the serde derive and one `#[serde(...)]` per field.
fn add_serde_attrs(input: &mut DeriveInput, ir: &StateIr, self_ty: &Type) {
    input.attrs.push(parse_quote!(
        #[derive(::mobility::__private::serde::Serialize, ::mobility::__private::serde::Deserialize)]
    ));
    input
        .attrs
        .push(parse_quote!(#[serde(crate = "::mobility::__private::serde")]));
    let path = util::canonical(self_ty).replacen('<', "::<", 1);
    let mut index = 0usize;
    let mut add = |fields: &mut Fields, part: &[FieldIr]| {
        for (field, f) in fields.iter_mut().zip(part) {
            let attr: syn::Attribute = match f.travel {
                Travel::Skip => {
                    let default = format!("{path}::__mobility_default_{index}");
                    parse_quote!(#[serde(skip, default = #default)])
                }
                Travel::Bytes => {
                    parse_quote!(#[serde(with = "::mobility::__private::serde_bytes")])
                }
                Travel::Serde | Travel::Rejected => {
                    let ser = format!("{path}::__mobility_ser_{index}");
                    let de = format!("{path}::__mobility_de_{index}");
                    parse_quote!(#[serde(serialize_with = #ser, deserialize_with = #de)])
                }
            };
            field.attrs.push(attr);
            index += 1;
        }
    };
    match &mut input.data {
        Data::Struct(s) => {
            if let Some((_, _, part)) = ir.parts.first() {
                add(&mut s.fields, part);
            }
        }
        Data::Enum(e) => {
            for (v, (_, _, part)) in e.variants.iter_mut().zip(&ir.parts) {
                add(&mut v.fields, part);
            }
        }
        Data::Union(_) => {}
    }
}

/// The canonical text fingerprinted into `Mobile::FINGERPRINT`.
fn shape_text(input: &DeriveInput, ir: &StateIr) -> String {
    let kind = if matches!(input.data, Data::Enum(_)) {
        "enum"
    } else {
        "struct"
    };
    let mut text = String::from(kind);
    for (variant, shape, fields) in &ir.parts {
        if let Some(v) = variant {
            text.push('|');
            text.push_str(v);
        }
        text.push_str(&shape[..shape.len().min(1)]);
        for f in fields.iter().filter(|f| !matches!(f.travel, Travel::Skip)) {
            text.push_str(&format!("{}:{};", f.name, util::canonical(&f.ty)));
        }
        text.push_str(&shape[shape.len().min(1)..]);
    }
    text
}

/// Everything next to the user's item: helpers, checks, `impl Mobile`, and
/// when the item was rejected, stubs that keep the rest of the program
/// compiling so that only the reported errors show.
fn support(input: &DeriveInput, ir: &StateIr, self_ty: &Type, failed: bool) -> TokenStream {
    let (impl_generics, _, where_clause) = input.generics.split_for_impl();
    let mut helpers = TokenStream::new();
    let mut asserts = TokenStream::new();
    let fields = ir.parts.iter().flat_map(|(_, _, f)| f);
    for (index, f) in fields.enumerate() {
        let ty = &f.ty;
        let span = f.ty.span();
        match f.travel {
            Travel::Skip => {
                let name = format_ident!("__mobility_default_{}", index);
                helpers.extend(quote! {
                    #[doc(hidden)]
                    #[allow(dead_code)]
                    fn #name() -> #ty {
                        (&&__MobilityDef::<#ty>(::core::marker::PhantomData)).__mobility_default()
                    }
                });
                asserts.extend(quote_spanned!(span=>
                    ::mobility::__private::assert_skippable::<#ty>();
                ));
            }
            Travel::Serde => {
                let ser = format_ident!("__mobility_ser_{}", index);
                let de = format_ident!("__mobility_de_{}", index);
                helpers.extend(quote! {
                    #[doc(hidden)]
                    #[allow(dead_code)]
                    fn #ser<__S: ::mobility::__private::serde::Serializer>(value: &#ty, serializer: __S)
                        -> ::core::result::Result<__S::Ok, __S::Error>
                    {
                        (&&__MobilitySer(value)).__mobility_ser(serializer)
                    }
                    #[doc(hidden)]
                    #[allow(dead_code)]
                    fn #de<'de, __D: ::mobility::__private::serde::Deserializer<'de>>(deserializer: __D)
                        -> ::core::result::Result<#ty, __D::Error>
                    {
                        (&&__MobilityDe::<#ty>(::core::marker::PhantomData)).__mobility_de(deserializer)
                    }
                });
                asserts.extend(checks::assertion(ty, Role::Field));
            }
            Travel::Bytes => {
                asserts.extend(checks::assertion(ty, Role::Field));
            }
            Travel::Rejected => {}
        }
    }
    let probes = probe::field_probes();
    let travelling: Vec<&Type> = ir
        .parts
        .iter()
        .flat_map(|(_, _, f)| f)
        .filter(|f| matches!(f.travel, Travel::Serde | Travel::Bytes))
        .map(|f| &f.ty)
        .collect();
    let checks_fn = checks::checks_fn(&input.generics, &travelling, &asserts);
    let fingerprint = shape_text(input, ir);
    // A state machine: an enum (its variant is the state) or a struct with a
    // `#[mobile(state)]` field (that field's variant is).
    let key_of = match (&input.data, &ir.state_field) {
        (Data::Enum(_), _) => Some(quote!(self)),
        (_, Some(member)) => Some(quote!(&self.#member)),
        _ => None,
    };
    let state_key = key_of.map(|value| {
        quote! {
            fn state_key(&self) -> ::core::option::Option<u64> {
                ::core::option::Option::Some(::mobility::__private::variant_key(#value))
            }
        }
    });
    let stubs = if failed {
        stubs(input, self_ty, ir.found)
    } else {
        TokenStream::new()
    };
    let mobile_where = mobile_where(where_clause, self_ty);
    let helper_impl = if failed {
        TokenStream::new()
    } else {
        quote! {
            impl #impl_generics #self_ty #where_clause {
                #helpers
            }
        }
    };
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, non_snake_case, clippy::all)]
        const _: () = {
            #probes
            #helper_impl

            #checks_fn

            impl #impl_generics ::mobility::Mobile for #self_ty #mobile_where {
                const FINGERPRINT: u64 = ::mobility::__private::fingerprint_str(#fingerprint);
                #state_key
            }

            #stubs
        };
    }
}

/// The user's where clause plus `for<'__mobility> Self: Migratable`: the impl
/// holds exactly when the type migrates, and when it does not, the error is
/// the field's, not a second one here.
fn mobile_where(where_clause: Option<&syn::WhereClause>, self_ty: &Type) -> TokenStream {
    let predicates = where_clause.map(|w| {
        let p = &w.predicates;
        if p.empty_or_trailing() {
            quote!(#p)
        } else {
            quote!(#p,)
        }
    });
    quote! {
        where #predicates for<'__mobility> #self_ty: ::mobility::Migratable
    }
}

/// Stub implementations for a rejected item. They are never run (the
/// expansion carries a `compile_error!`); they only spare the user secondary
/// errors wherever the type is used.
fn stubs(input: &DeriveInput, self_ty: &Type, found: Found) -> TokenStream {
    let (impl_generics, _, where_clause) = input.generics.split_for_impl();
    let mut de_generics = input.generics.clone();
    de_generics.params.insert(0, parse_quote!('de));
    let (de_impl_generics, _, _) = de_generics.split_for_impl();
    let auto = if found.breaks_auto_traits {
        // Sound because this code never compiles: the expansion also carries
        // the error that rejected the field.
        quote! {
            #[allow(unsafe_code)]
            unsafe impl #impl_generics ::core::marker::Send for #self_ty #where_clause {}
            #[allow(unsafe_code)]
            unsafe impl #impl_generics ::core::marker::Sync for #self_ty #where_clause {}
        }
    } else {
        TokenStream::new()
    };
    let span = Span::call_site();
    quote_spanned! {span=>
        impl #impl_generics ::mobility::__private::serde::Serialize for #self_ty #where_clause {
            fn serialize<__S: ::mobility::__private::serde::Serializer>(&self, _: __S)
                -> ::core::result::Result<__S::Ok, __S::Error>
            {
                ::core::unreachable!("rejected by #[mobile]")
            }
        }
        impl #de_impl_generics ::mobility::__private::serde::Deserialize<'de> for #self_ty #where_clause {
            fn deserialize<__D: ::mobility::__private::serde::Deserializer<'de>>(_: __D)
                -> ::core::result::Result<Self, __D::Error>
            {
                ::core::unreachable!("rejected by #[mobile]")
            }
        }
        #auto
    }
}
