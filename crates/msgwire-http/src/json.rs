//! MessagePack values as JSON, for people and for JSON-speaking tools.
//!
//! JSON has no binary strings, extension types, non-string map keys or NaN, so those
//! are spelled as small tagged objects that cannot be mistaken for ordinary data:
//!
//! | MessagePack | JSON |
//! |---|---|
//! | nil, bool, int, float, str | `null`, `true`, `1`, `1.5`, `"s"` |
//! | bin | `{"$bin": "<base64>"}` |
//! | ext | `{"$ext": {"type": <i8>, "data": "<base64>"}}` |
//! | array | `[...]` |
//! | map with only string keys | `{"k": v}` |
//! | map with other keys | `{"$map": [[k, v], ...]}` |
//! | NaN / ±inf | `{"$float": "NaN" \| "inf" \| "-inf"}` |
//! | str that is not UTF-8 | `{"$bin": "<base64>"}` |

use base64::{engine::general_purpose::STANDARD, Engine};
use rmpv::{Value, ValueRef};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value as Json};

/// A MessagePack value as JSON (see the module docs for the tagged forms).
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => {
            if let Some(u) = i.as_u64() {
                json!(u)
            } else if let Some(s) = i.as_i64() {
                json!(s)
            } else {
                Json::Null
            }
        }
        Value::F32(f) => float(f64::from(*f)),
        Value::F64(f) => float(*f),
        Value::String(s) => match s.as_str() {
            Some(text) => Json::String(text.to_owned()),
            None => bin(s.as_bytes()),
        },
        Value::Binary(b) => bin(b),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(pairs) => {
            if pairs.iter().all(|(k, _)| k.as_str().is_some()) {
                let mut object = Map::new();
                for (k, v) in pairs {
                    if let Some(key) = k.as_str() {
                        object.insert(key.to_owned(), to_json(v));
                    }
                }
                // Duplicate keys would be lost in an object: keep every pair instead.
                if object.len() == pairs.len() {
                    return Json::Object(object);
                }
            }
            let list = pairs
                .iter()
                .map(|(k, v)| Json::Array(vec![to_json(k), to_json(v)]))
                .collect();
            json!({ "$map": Json::Array(list) })
        }
        Value::Ext(kind, data) => {
            json!({ "$ext": { "type": kind, "data": STANDARD.encode(data) } })
        }
    }
}

/// A JSON value as MessagePack: the inverse of [`to_json`]. Integers stay integers
/// (`1` is an int, `1.0` a float), the tagged objects become bin, ext, non-string-keyed
/// maps and special floats again, and any other object becomes a map with str keys.
pub fn from_json(json: &Json) -> Result<Value, String> {
    Ok(match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::Array(items.iter().map(from_json).collect::<Result<_, _>>()?),
        Json::Object(object) => match tagged(object)? {
            Some(value) => value,
            None => Value::Map(
                object
                    .iter()
                    .map(|(k, v)| Ok((Value::from(k.as_str()), from_json(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
        },
    })
}

/// `{"$bin": ..}`, `{"$ext": ..}`, `{"$map": ..}` and `{"$float": ..}` as values.
fn tagged(object: &Map<String, Json>) -> Result<Option<Value>, String> {
    if object.len() != 1 {
        return Ok(None);
    }
    let Some((tag, inner)) = object.iter().next() else {
        return Ok(None);
    };
    let base64 = |v: &Json| {
        v.as_str()
            .and_then(|s| STANDARD.decode(s).ok())
            .ok_or_else(|| format!("{tag} wants a base64 string, got {v}"))
    };
    Ok(Some(match tag.as_str() {
        "$bin" => Value::Binary(base64(inner)?),
        "$ext" => {
            let kind = inner["type"]
                .as_i64()
                .and_then(|t| i8::try_from(t).ok())
                .ok_or("$ext wants {\"type\": -128..127, \"data\": base64}")?;
            Value::Ext(kind, base64(&inner["data"])?)
        }
        "$map" => {
            let pairs = inner.as_array().ok_or("$map wants [[key, value], ...]")?;
            let mut out = Vec::with_capacity(pairs.len());
            for pair in pairs {
                match pair.as_array().map(Vec::as_slice) {
                    Some([k, v]) => out.push((from_json(k)?, from_json(v)?)),
                    _ => return Err("$map wants [[key, value], ...]".into()),
                }
            }
            Value::Map(out)
        }
        "$float" => match inner.as_str() {
            Some("NaN") => Value::F64(f64::NAN),
            Some("inf") => Value::F64(f64::INFINITY),
            Some("-inf") => Value::F64(f64::NEG_INFINITY),
            _ => return Err("$float wants \"NaN\", \"inf\" or \"-inf\"".into()),
        },
        _ => return Ok(None),
    }))
}

/// Bytes as `{"$bin": "<base64>"}`.
pub fn bin(bytes: &[u8]) -> Json {
    json!({ "$bin": STANDARD.encode(bytes) })
}

fn float(f: f64) -> Json {
    match serde_json::Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None => json!({ "$float": non_finite_name(f) }),
    }
}

/// How `{"$float": ..}` names a float JSON has no number for: NaN, inf, -inf.
fn non_finite_name(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

/// One MessagePack value (`bytes`, exactly one value) written as JSON text, the same
/// text `serde_json::to_vec(&to_json(&value))` gives, without building either tree:
/// strings and binaries are borrowed from `bytes` and written straight out. The HTTP
/// side answers every JSON request with it.
pub fn msgpack_to_json_vec(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut rest = bytes;
    let value = rmpv::decode::read_value_ref_with_max_depth(&mut rest, MAX_JSON_DEPTH)
        .map_err(|e| format!("not MessagePack: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the value", rest.len()));
    }
    let mut out = Vec::with_capacity(bytes.len() * 2 + 16);
    serde_json::to_writer(&mut out, &AsJson(&value)).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Deepest value [`msgpack_to_json_vec`] writes (values from the network are limited
/// far below this before they get here).
const MAX_JSON_DEPTH: usize = 1024;

/// A borrowed MessagePack value that serializes as [`to_json`] would show it.
struct AsJson<'a, 'v>(&'v ValueRef<'a>);

impl Serialize for AsJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let base64 = |bytes: &[u8]| STANDARD.encode(bytes);
        match self.0 {
            ValueRef::Nil => s.serialize_unit(),
            ValueRef::Boolean(b) => s.serialize_bool(*b),
            ValueRef::Integer(i) => match (i.as_u64(), i.as_i64()) {
                (Some(u), _) => s.serialize_u64(u),
                (None, Some(n)) => s.serialize_i64(n),
                (None, None) => s.serialize_unit(),
            },
            ValueRef::F32(f) => float_json(f64::from(*f), s),
            ValueRef::F64(f) => float_json(*f, s),
            ValueRef::String(text) => match text.as_str() {
                Some(text) => s.serialize_str(text),
                None => serialize_tagged(s, "$bin", &base64(text.as_bytes())),
            },
            ValueRef::Binary(bytes) => serialize_tagged(s, "$bin", &base64(bytes)),
            ValueRef::Array(items) => s.collect_seq(items.iter().map(AsJson)),
            ValueRef::Map(pairs) if has_distinct_str_keys(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(str_key(k).unwrap_or_default(), &AsJson(v))?;
                }
                map.end()
            }
            ValueRef::Map(pairs) => {
                let list: Vec<[AsJson<'_, '_>; 2]> =
                    pairs.iter().map(|(k, v)| [AsJson(k), AsJson(v)]).collect();
                serialize_tagged(s, "$map", &list[..])
            }
            ValueRef::Ext(kind, data) => {
                let inner = ExtJson {
                    kind: *kind,
                    data: base64(data),
                };
                serialize_tagged(s, "$ext", &inner)
            }
        }
    }
}

#[derive(Serialize)]
struct ExtJson {
    #[serde(rename = "type")]
    kind: i8,
    data: String,
}

/// A key that is a UTF-8 str.
fn str_key<'v>(key: &'v ValueRef<'_>) -> Option<&'v str> {
    match key {
        ValueRef::String(text) => text.as_str(),
        _ => None,
    }
}

/// Whether every key is a UTF-8 str and no two are equal (else the map goes as `$map`,
/// as in [`to_json`]).
fn has_distinct_str_keys(pairs: &[(ValueRef<'_>, ValueRef<'_>)]) -> bool {
    let mut keys: Vec<&str> = Vec::with_capacity(pairs.len());
    for (k, _) in pairs {
        match str_key(k) {
            Some(key) => keys.push(key),
            None => return false,
        }
    }
    keys.sort_unstable();
    keys.windows(2).all(|w| w[0] != w[1])
}

fn float_json<S: Serializer>(f: f64, s: S) -> Result<S::Ok, S::Error> {
    if f.is_finite() {
        return s.serialize_f64(f);
    }
    serialize_tagged(s, "$float", non_finite_name(f))
}

/// `{"<tag>": value}`.
fn serialize_tagged<S: Serializer, T: Serialize + ?Sized>(
    s: S,
    tag: &str,
    value: &T,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry(tag, value)?;
    map.end()
}

/// Decodes `payload` as exactly one MessagePack value (nothing left over), with the
/// default depth and length limits; see [`msgwire_wire::decode_value`].
pub fn decode_msgpack(payload: &[u8]) -> Result<Value, String> {
    msgwire_wire::decode_value(payload, &msgwire_wire::Limits::default())
        .map_err(|e| format!("not MessagePack: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_forms() {
        let v = Value::Map(vec![
            (Value::from("b"), Value::Binary(vec![1, 2, 3])),
            (Value::from("x"), Value::Ext(5, vec![0xff])),
            (Value::from("n"), Value::F64(f64::NAN)),
        ]);
        assert_eq!(
            to_json(&v),
            json!({"b": {"$bin": "AQID"}, "x": {"$ext": {"type": 5, "data": "/w=="}}, "n": {"$float": "NaN"}})
        );
        let m = Value::Map(vec![(Value::from(1), Value::from(-2))]);
        assert_eq!(to_json(&m), json!({"$map": [[1, -2]]}));
    }

    #[test]
    fn json_round_trips_through_msgpack() {
        for text in [
            r#"[1, -2, 1.5, "s", null, true, {"k": [1]}]"#,
            r#"{"$bin": "AQID"}"#,
            r#"{"$ext": {"type": 5, "data": "/w=="}}"#,
            r#"{"$map": [[1, -2]]}"#,
            r#"{"$float": "-inf"}"#,
        ] {
            let json: Json = serde_json::from_str(text).unwrap();
            assert_eq!(to_json(&from_json(&json).unwrap()), json, "{text}");
        }
        assert_eq!(from_json(&json!(1)).unwrap(), Value::from(1));
        assert_eq!(from_json(&json!(1.0)).unwrap(), Value::F64(1.0));
        assert!(from_json(&json!({"$bin": 5})).is_err());
    }

    #[test]
    fn msgpack_is_written_as_json_exactly_as_to_json_shows_it() {
        let values = [
            Value::Map(vec![
                (Value::from("b"), Value::Binary(vec![1, 2, 3])),
                (Value::from("x"), Value::Ext(5, vec![0xff])),
                (Value::from("n"), Value::F64(f64::NAN)),
                (Value::from("i"), Value::F64(f64::NEG_INFINITY)),
                (Value::from("f"), Value::F32(0.1)),
            ]),
            Value::Map(vec![(Value::from(1), Value::from(-2))]),
            Value::Map(vec![
                (Value::from("k"), Value::from(1)),
                (Value::from("k"), Value::from(2)),
            ]),
            Value::Array(vec![
                Value::Nil,
                true.into(),
                u64::MAX.into(),
                i64::MIN.into(),
                "s".into(),
            ]),
            // A str that is not UTF-8: a2 ff fe.
            rmpv::decode::read_value(&mut &[0xa2, 0xff, 0xfe][..]).unwrap(),
            Value::Map(vec![]),
            Value::Array(vec![Value::Map(vec![
                (Value::from("z"), Value::from(1)),
                (Value::from("a"), Value::from(2)),
            ])]),
        ];
        for value in values {
            let mut bytes = Vec::new();
            rmpv::encode::write_value(&mut bytes, &value).unwrap();
            let direct = msgpack_to_json_vec(&bytes).unwrap();
            let via_tree = serde_json::to_vec(&to_json(&value)).unwrap();
            assert_eq!(
                String::from_utf8(direct).unwrap(),
                String::from_utf8(via_tree).unwrap(),
                "{value:?}"
            );
        }
        assert!(msgpack_to_json_vec(&[0x01, 0x02]).is_err());
    }

    #[test]
    fn trailing_bytes_are_not_one_value() {
        assert!(decode_msgpack(&[0x01, 0x02]).is_err());
        assert_eq!(
            decode_msgpack(&[0x93, 1, 2, 3]).unwrap(),
            Value::Array(vec![1.into(), 2.into(), 3.into()])
        );
        assert!(decode_msgpack(&[0xc1]).is_err());
    }
}
