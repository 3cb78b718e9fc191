//! Helpers emitted inside each expansion's `const _: () = { ... };` block.
//!
//! They use autoref specialization so that the generated (de)serialization,
//! reply and request code compiles whether or not a type is migratable: for a
//! type that is, the method resolves to the real implementation; for one that
//! is not, to a fallback that is never run, because the spanned
//! `assert_field::<Ty>()` (or argument, reply) assertion has already failed. The result: one
//! mistake gives one error, at the offending field, argument or reply type,
//! instead of one from our assertion plus several from serde's derive.

use proc_macro2::TokenStream;
use quote::quote;

/// Probes for serializing, deserializing and defaulting a field.
pub(crate) fn field_probes() -> TokenStream {
    quote! {
        #[allow(dead_code)]
        struct __MobilitySer<'__a, __T: ?::core::marker::Sized>(&'__a __T);
        #[allow(dead_code)]
        trait __MobilitySerReal {
            fn __mobility_ser<__S: ::mobility::__private::serde::Serializer>(&self, serializer: __S)
                -> ::core::result::Result<__S::Ok, __S::Error>;
        }
        impl<'__a, __T> __MobilitySerReal for &__MobilitySer<'__a, __T>
        where
            __T: ?::core::marker::Sized + ::mobility::__private::serde::Serialize,
        {
            fn __mobility_ser<__S: ::mobility::__private::serde::Serializer>(&self, serializer: __S)
                -> ::core::result::Result<__S::Ok, __S::Error>
            {
                ::mobility::__private::serde::Serialize::serialize(self.0, serializer)
            }
        }
        #[allow(dead_code)]
        trait __MobilitySerFallback {
            fn __mobility_ser<__S: ::mobility::__private::serde::Serializer>(&self, serializer: __S)
                -> ::core::result::Result<__S::Ok, __S::Error>;
        }
        impl<'__a, __T: ?::core::marker::Sized> __MobilitySerFallback for __MobilitySer<'__a, __T> {
            fn __mobility_ser<__S: ::mobility::__private::serde::Serializer>(&self, _: __S)
                -> ::core::result::Result<__S::Ok, __S::Error>
            {
                ::core::unreachable!("a non-migratable type is a compile error")
            }
        }

        #[allow(dead_code)]
        struct __MobilityDe<__T>(::core::marker::PhantomData<fn() -> __T>);
        #[allow(dead_code)]
        trait __MobilityDeReal<__T> {
            fn __mobility_de<'de, __D: ::mobility::__private::serde::Deserializer<'de>>(&self, deserializer: __D)
                -> ::core::result::Result<__T, __D::Error>;
        }
        impl<__T> __MobilityDeReal<__T> for &__MobilityDe<__T>
        where
            __T: ::mobility::__private::serde::de::DeserializeOwned,
        {
            fn __mobility_de<'de, __D: ::mobility::__private::serde::Deserializer<'de>>(&self, deserializer: __D)
                -> ::core::result::Result<__T, __D::Error>
            {
                <__T as ::mobility::__private::serde::Deserialize<'de>>::deserialize(deserializer)
            }
        }
        #[allow(dead_code)]
        trait __MobilityDeFallback<__T> {
            fn __mobility_de<'de, __D: ::mobility::__private::serde::Deserializer<'de>>(&self, deserializer: __D)
                -> ::core::result::Result<__T, __D::Error>;
        }
        impl<__T> __MobilityDeFallback<__T> for __MobilityDe<__T> {
            fn __mobility_de<'de, __D: ::mobility::__private::serde::Deserializer<'de>>(&self, _: __D)
                -> ::core::result::Result<__T, __D::Error>
            {
                ::core::unreachable!("a non-migratable type is a compile error")
            }
        }

        #[allow(dead_code)]
        struct __MobilityDef<__T>(::core::marker::PhantomData<fn() -> __T>);
        #[allow(dead_code)]
        trait __MobilityDefReal<__T> {
            fn __mobility_default(&self) -> __T;
        }
        impl<__T: ::core::default::Default> __MobilityDefReal<__T> for &__MobilityDef<__T> {
            fn __mobility_default(&self) -> __T {
                <__T as ::core::default::Default>::default()
            }
        }
        #[allow(dead_code)]
        trait __MobilityDefFallback<__T> {
            fn __mobility_default(&self) -> __T;
        }
        impl<__T> __MobilityDefFallback<__T> for __MobilityDef<__T> {
            fn __mobility_default(&self) -> __T {
                ::core::unreachable!("a skipped field without Default is a compile error")
            }
        }
    }
}

/// Probes for sending a reply and requesting one.
pub(crate) fn reply_probes() -> TokenStream {
    quote! {
        #[doc(hidden)]
        #[allow(dead_code)]
        struct __MobilityReply<__T>(::core::marker::PhantomData<fn() -> __T>);
        #[doc(hidden)]
        #[allow(dead_code)]
        trait __MobilityReplyReal<__T> {
            fn __mobility_send(&self, reply: ::mobility::ReplyTo, value: __T);
            fn __mobility_send_later(&self, reply: ::mobility::ReplyTo, value: ::mobility::Reply<__T>);
            fn __mobility_request<'__a, __A: ::mobility::Actor>(&self, core: &'__a ::mobility::__private::HandleCore<__A>, msg: __A::Msg)
                -> impl ::core::future::Future<Output = ::core::result::Result<__T, ::mobility::Error>> + ::core::marker::Send;
        }
        #[doc(hidden)]
        impl<__T: ::mobility::Migratable> __MobilityReplyReal<__T> for &__MobilityReply<__T> {
            fn __mobility_send(&self, reply: ::mobility::ReplyTo, value: __T) {
                reply.send(value)
            }
            fn __mobility_send_later(&self, reply: ::mobility::ReplyTo, value: ::mobility::Reply<__T>) {
                reply.send_reply(value)
            }
            fn __mobility_request<'__a, __A: ::mobility::Actor>(&self, core: &'__a ::mobility::__private::HandleCore<__A>, msg: __A::Msg)
                -> impl ::core::future::Future<Output = ::core::result::Result<__T, ::mobility::Error>> + ::core::marker::Send
            {
                core.request::<__T>(msg)
            }
        }
        #[doc(hidden)]
        #[allow(dead_code)]
        trait __MobilityReplyFallback<__T> {
            fn __mobility_send(&self, reply: ::mobility::ReplyTo, value: __T);
            fn __mobility_send_later(&self, reply: ::mobility::ReplyTo, value: ::mobility::Reply<__T>);
            fn __mobility_request<'__a, __A: ::mobility::Actor>(&self, core: &'__a ::mobility::__private::HandleCore<__A>, msg: __A::Msg)
                -> impl ::core::future::Future<Output = ::core::result::Result<__T, ::mobility::Error>> + ::core::marker::Send;
        }
        #[doc(hidden)]
        impl<__T> __MobilityReplyFallback<__T> for __MobilityReply<__T> {
            fn __mobility_send(&self, _: ::mobility::ReplyTo, _: __T) {
                ::core::unreachable!("a non-migratable reply is a compile error")
            }
            fn __mobility_send_later(&self, _: ::mobility::ReplyTo, _: ::mobility::Reply<__T>) {
                ::core::unreachable!("a non-migratable reply is a compile error")
            }
            fn __mobility_request<'__a, __A: ::mobility::Actor>(&self, _: &'__a ::mobility::__private::HandleCore<__A>, _: __A::Msg)
                -> impl ::core::future::Future<Output = ::core::result::Result<__T, ::mobility::Error>> + ::core::marker::Send
            {
                ::core::future::pending()
            }
        }
    }
}
