//! Macros that keep the wire-type table of each direction in one place.

/// Declares an open string enum: known values as variants, anything else kept in `Other`.
/// Build values with `From<&str>`, which picks the known variant when there is one (an
/// `Other` holding a known value would decode back as that variant).
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this crate does not know, kept as sent. Build it with `From<&str>`.
            Other(String),
        }

        impl $name {
            /// The wire string of this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )*
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $wire => Self::$variant, )*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                Ok(Self::from(s.as_ref()))
            }
        }
    };
}

/// Declares a message enum from a table of `"wire-type" => Variant(Data)` rows (rows without
/// data are messages whose `data` is absent). Generates the type name lookup, decoding of the
/// `data` member by type, encoding of it, and an `Unknown` variant that keeps anything else.
macro_rules! message_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $wire:literal => $variant:ident $( ( $data:ty ) )?, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant $( ( $data ) )?, )*
            /// A message type this crate does not know, kept losslessly.
            Unknown($crate::UnknownMessage),
        }

        impl $name {
            /// The wire `type` string of this message.
            pub fn message_type(&self) -> &str {
                match self {
                    $( Self::$variant $( (message_enum!(@wild $data)) )? => $wire, )*
                    Self::Unknown(u) => &u.message_type,
                }
            }

            /// Decodes the `data` member for a message of type `message_type`.
            pub(crate) fn decode(
                message_type: &str,
                data: Option<&::serde_json::value::RawValue>,
            ) -> Result<Self, $crate::RtviError> {
                match message_type {
                    $( $wire => message_enum!(@decode $wire, $variant, data $(, $data)?), )*
                    other => Ok(Self::Unknown($crate::UnknownMessage::decode(other, data)?)),
                }
            }

            /// Writes the `data` member (if this message has one) into an envelope map.
            pub(crate) fn encode_data<M: ::serde::ser::SerializeMap>(
                &self,
                map: &mut M,
            ) -> Result<(), M::Error> {
                match self {
                    $( Self::$variant $( (message_enum!(@bind data $data)) )? => {
                        message_enum!(@encode map $(, data $data)?)
                    } )*
                    Self::Unknown(u) => match &u.data {
                        Some(data) if !data.is_null() => map.serialize_entry("data", data),
                        _ => Ok(()),
                    },
                }
            }
        }
    };
    (@wild $data:ty) => { _ };
    (@bind $binding:ident $data:ty) => { $binding };
    (@decode $wire:literal, $variant:ident, $raw:ident) => {{
        // A payload-less type ignores any `data` (already checked as JSON and for depth).
        let _ = $raw;
        Ok(Self::$variant)
    }};
    (@decode $wire:literal, $variant:ident, $raw:ident, $data:ty) => {
        $crate::envelope::decode_data::<$data>($wire, $raw).map(Self::$variant)
    };
    (@encode $map:ident) => { Ok(()) };
    (@encode $map:ident, $binding:ident $data:ty) => {
        $crate::envelope::encode_data($map, $binding)
    };
}

pub(crate) use {message_enum, open_enum};
