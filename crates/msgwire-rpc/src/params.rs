//! From `params` to a handler's argument type, and from its result back to a value.
//!
//! `params` arrive as an array (positional) or a map (named). A serde-derived struct
//! accepts both: rmpv's deserializer hands an array to the struct's `visit_seq` (fields
//! in declaration order) and a map to its `visit_map` (fields by name).
//!
//! ```text
//! [1, 2]             ─┐
//!                     ├─>  AddParams { a: 1, b: 2 }
//! {"a": 1, "b": 2}   ─┘
//! ```
//!
//! The params arrive as a [`RawValue`] — MessagePack bytes — and `rmp_serde` reads the
//! handler's type straight from them: no `rmpv::Value` tree is built on the way, so a
//! handler taking `(i64, i64)` costs nothing more for a 16 MiB params array than the
//! moment it takes to find the array has the wrong length.
//!
//! Handlers whose argument is not a collection (a `String`, a number, an enum, an
//! `Option`) receive the single element of a one-element array, so
//! `|name: String|` answers `greet("Alice")` sent as `["Alice"]`; a handler taking `()`
//! accepts an empty array or map.
//!
//! What a handler expects is worked out once, when it is registered, by running its
//! type's `Deserialize` impl against a probe that records the first thing asked for
//! (a struct and its fields, a tuple and its length, a string, …). It shapes the params
//! and words the INVALID_ARGUMENT message.

use std::fmt;

use msgwire_wire::text::display_excerpt;
use msgwire_wire::{RawValue, RpcError, ValueKind};
use serde::de::{self, DeserializeOwned, Visitor};

/// What a handler's argument type asks its deserializer for first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// A struct with named fields: positional or named params.
    Struct {
        name: &'static str,
        fields: &'static [&'static str],
    },
    /// A tuple or tuple struct of `len` values: positional params.
    Tuple { len: usize },
    /// A sequence of any length.
    Seq,
    /// A map of any keys.
    Map,
    /// `()`: no params.
    Unit,
    /// Anything (`rmpv::Value`, an untagged enum): params as they came.
    Any,
    /// One value that is not a collection (a string, a number, an `Option`, an enum).
    Scalar,
}

impl Shape {
    /// Probes `P`'s `Deserialize` impl.
    pub(crate) fn of<P: DeserializeOwned>() -> Shape {
        match P::deserialize(Probe) {
            Err(Probed(shape)) => shape,
            // The probe never produces a value; a Deserialize impl that conjures one
            // without asking is happy with anything.
            Ok(_) => Shape::Any,
        }
    }

    /// Adapts the params to what the handler asks for: the one element of a
    /// one-element array for a scalar, nil for an empty array or map given to `()` or
    /// an `Option`.
    fn shape(&self, params: &RawValue) -> RawValue {
        let kind = params.kind();
        let empty = || match kind {
            ValueKind::Array => params.array_len() == Some(0),
            ValueKind::Map => params.map_entries().is_some_and(|mut e| e.next().is_none()),
            _ => false,
        };
        match self {
            Shape::Scalar if kind == ValueKind::Array && params.array_len() == Some(1) => params
                .array_items()
                .and_then(|mut items| items.next())
                .unwrap_or_default(),
            Shape::Scalar if kind == ValueKind::Array && empty() => RawValue::nil(),
            Shape::Unit if empty() => RawValue::nil(),
            _ => params.clone(),
        }
    }
}

/// Renders what the handler expects, for an INVALID_ARGUMENT message.
struct Expected<'a> {
    shape: &'a Shape,
    type_name: &'static str,
}

impl fmt::Display for Expected<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shape {
            Shape::Struct { name, fields } => {
                write!(f, "{name} as an array [")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(field)?;
                }
                f.write_str("] or a map {")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "\"{field}\": …")?;
                }
                f.write_str("}")
            }
            Shape::Tuple { len } => {
                write!(f, "an array of {len} values ({})", self.type_name)
            }
            Shape::Seq => write!(f, "an array ({})", self.type_name),
            Shape::Map => write!(f, "a map ({})", self.type_name),
            Shape::Unit => f.write_str("no params ([] or {})"),
            Shape::Any => write!(f, "{}", self.type_name),
            Shape::Scalar => write!(f, "one value ({}) as [value]", self.type_name),
        }
    }
}

/// How much of serde's complaint an INVALID_ARGUMENT message quotes (it can quote the
/// peer's params).
const COMPLAINT_LEN: usize = 256;

/// Decodes a handler's argument from `params`, or says in an INVALID_ARGUMENT error what
/// was wrong and what `method` expects.
pub(crate) fn decode<P: DeserializeOwned>(
    method: &str,
    shape: &Shape,
    params: &RawValue,
) -> Result<P, RpcError> {
    shape.shape(params).deserialize::<P>().map_err(|e| {
        let complaint = match &e {
            // rmp_serde names the marker it did not expect; say it in words.
            rmp_serde::decode::Error::TypeMismatch(marker) => {
                format!("invalid type: found {}", marker_kind(*marker))
            }
            other => display_excerpt(other, COMPLAINT_LEN),
        };
        RpcError::invalid_argument(format!(
            "invalid params for method \"{}\": {complaint}; expected {}",
            msgwire_wire::text::excerpt(method, 64),
            Expected {
                shape,
                type_name: std::any::type_name::<P>(),
            }
        ))
    })
}

/// What a MessagePack marker starts, in words.
fn marker_kind(marker: rmp::Marker) -> &'static str {
    use rmp::Marker as M;
    match marker {
        M::Null => "nil",
        M::True | M::False => "a boolean",
        M::FixPos(_)
        | M::FixNeg(_)
        | M::U8
        | M::U16
        | M::U32
        | M::U64
        | M::I8
        | M::I16
        | M::I32
        | M::I64 => "an integer",
        M::F32 | M::F64 => "a float",
        M::FixStr(_) | M::Str8 | M::Str16 | M::Str32 => "a string",
        M::Bin8 | M::Bin16 | M::Bin32 => "binary data",
        M::FixArray(_) | M::Array16 | M::Array32 => "an array",
        M::FixMap(_) | M::Map16 | M::Map32 => "a map",
        _ => "an extension value",
    }
}

/// The "error" the probe ends with: what was asked for.
#[derive(Debug)]
struct Probed(Shape);

impl fmt::Display for Probed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "probed {:?}", self.0)
    }
}

impl std::error::Error for Probed {}

impl de::Error for Probed {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Probed(Shape::Any)
    }
}

/// A deserializer that answers every request with the shape it was asked for.
struct Probe;

macro_rules! probe_as {
    ($shape:expr => $($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Probed> {
                Err(Probed($shape))
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Probe {
    type Error = Probed;

    probe_as!(Shape::Any => deserialize_any, deserialize_ignored_any);
    probe_as!(Shape::Scalar =>
        deserialize_bool, deserialize_i8, deserialize_i16, deserialize_i32, deserialize_i64,
        deserialize_i128, deserialize_u8, deserialize_u16, deserialize_u32, deserialize_u64,
        deserialize_u128, deserialize_f32, deserialize_f64, deserialize_char,
        deserialize_str, deserialize_string, deserialize_bytes, deserialize_byte_buf,
        deserialize_option, deserialize_identifier,
    );
    probe_as!(Shape::Unit => deserialize_unit);
    probe_as!(Shape::Seq => deserialize_seq);
    probe_as!(Shape::Map => deserialize_map);

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed(Shape::Unit))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Probed> {
        // A newtype is its inner type on the wire.
        visitor.visit_newtype_struct(Probe)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        _visitor: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed(Shape::Tuple { len }))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        _visitor: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed(Shape::Tuple { len }))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed(Shape::Struct { name, fields }))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed(Shape::Scalar))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msgwire_wire::Value;
    use serde::Deserialize;

    fn raw(v: Value) -> RawValue {
        RawValue::from(v)
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct AddParams {
        a: i64,
        b: i64,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct UserId(u32);

    #[test]
    fn shapes() {
        assert_eq!(
            Shape::of::<AddParams>(),
            Shape::Struct {
                name: "AddParams",
                fields: &["a", "b"]
            }
        );
        assert_eq!(Shape::of::<(i64, i64)>(), Shape::Tuple { len: 2 });
        assert_eq!(Shape::of::<String>(), Shape::Scalar);
        assert_eq!(Shape::of::<UserId>(), Shape::Scalar);
        assert_eq!(Shape::of::<Option<u32>>(), Shape::Scalar);
        assert_eq!(Shape::of::<()>(), Shape::Unit);
        assert_eq!(Shape::of::<Vec<u8>>(), Shape::Seq);
        assert_eq!(Shape::of::<Value>(), Shape::Any);
    }

    #[test]
    fn struct_from_array_and_map() {
        let shape = Shape::of::<AddParams>();
        let positional = Value::Array(vec![1.into(), 2.into()]);
        let named = Value::Map(vec![("b".into(), 2.into()), ("a".into(), 1.into())]);
        let want = AddParams { a: 1, b: 2 };
        assert_eq!(
            decode::<AddParams>("add", &shape, &raw(positional)),
            Ok(want)
        );
        assert_eq!(
            decode::<AddParams>("add", &shape, &raw(named)),
            Ok(AddParams { a: 1, b: 2 })
        );
    }

    #[test]
    fn scalars_unwrap_one_element() {
        let shape = Shape::of::<String>();
        let got = decode::<String>("greet", &shape, &raw(Value::Array(vec!["Alice".into()])));
        assert_eq!(got, Ok("Alice".to_owned()));
        let shape = Shape::of::<Option<u32>>();
        assert_eq!(
            decode::<Option<u32>>("list", &shape, &raw(Value::Array(vec![]))),
            Ok(None)
        );
        let shape = Shape::of::<()>();
        assert_eq!(
            decode::<()>("ping", &shape, &raw(Value::Array(vec![]))),
            Ok(())
        );
        assert_eq!(
            decode::<()>("ping", &shape, &raw(Value::Map(vec![]))),
            Ok(())
        );
    }

    #[test]
    fn errors_say_what_was_expected() {
        let shape = Shape::of::<AddParams>();
        let err = decode::<AddParams>("add", &shape, &raw(Value::Array(vec![1.into()])))
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(err.contains("\"add\""), "{err}");
        assert!(err.contains("AddParams as an array [a, b]"), "{err}");
        let err = decode::<AddParams>(
            "add",
            &shape,
            &raw(Value::Array(vec![1.into(), "x".into()])),
        )
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn a_complaint_quotes_only_a_prefix_of_the_params() {
        let shape = Shape::of::<AddParams>();
        let huge = "z".repeat(1 << 20);
        let err = decode::<AddParams>(
            "add",
            &shape,
            &raw(Value::Array(vec![huge.into(), 1.into()])),
        )
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
        assert!(err.len() < 1024, "{} bytes", err.len());
        assert!(err.contains("invalid type"), "{err}");
        let long_method = "m".repeat(10_000);
        let err = decode::<AddParams>(&long_method, &shape, &raw(Value::Nil))
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(err.len() < 1024, "{} bytes", err.len());
    }
}
