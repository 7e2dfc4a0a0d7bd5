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
use rmpv::Value;
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
        None if f.is_nan() => json!({ "$float": "NaN" }),
        None if f > 0.0 => json!({ "$float": "inf" }),
        None => json!({ "$float": "-inf" }),
    }
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
    fn trailing_bytes_are_not_one_value() {
        assert!(decode_msgpack(&[0x01, 0x02]).is_err());
        assert_eq!(
            decode_msgpack(&[0x93, 1, 2, 3]).unwrap(),
            Value::Array(vec![1.into(), 2.into(), 3.into()])
        );
        assert!(decode_msgpack(&[0xc1]).is_err());
    }
}
