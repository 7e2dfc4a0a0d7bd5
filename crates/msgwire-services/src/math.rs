//! math: `add(a, b)`, `multiply(a, b)`, `greet(name)`, `echo(value)`.
//!
//! Numbers are integers (i64) or floats; two integers give an integer, and an integer
//! result that would overflow is OUT_OF_RANGE rather than a wrapped or rounded value.

use msgwire_wire::{Code, RawValue, RpcError, ValueKind};
use serde::{Deserialize, Serialize};

/// A number as the peer sent it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Number {
    /// An integer that fits an i64.
    Int(i64),
    /// Anything else numeric.
    Float(f64),
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// `add` and `multiply` params: `[a, b]` or `{"a": .., "b": ..}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Pair {
    /// Left operand.
    pub a: Number,
    /// Right operand.
    pub b: Number,
}

fn arithmetic(
    op: &str,
    p: Pair,
    ints: fn(i64, i64) -> Option<i64>,
    floats: fn(f64, f64) -> f64,
) -> Result<Number, RpcError> {
    match (p.a, p.b) {
        (Number::Int(a), Number::Int(b)) => ints(a, b).map(Number::Int).ok_or_else(|| {
            RpcError::new(
                Code::OutOfRange,
                format!("{op}({a}, {b}) overflows a 64-bit integer"),
            )
        }),
        (a, b) => Ok(Number::Float(floats(a.as_f64(), b.as_f64()))),
    }
}

/// `a + b`.
pub fn add(p: Pair) -> Result<Number, RpcError> {
    arithmetic("add", p, i64::checked_add, |a, b| a + b)
}

/// `a * b`.
pub fn multiply(p: Pair) -> Result<Number, RpcError> {
    arithmetic("multiply", p, i64::checked_mul, |a, b| a * b)
}

/// `greet` params: `[name]` or `{"name": ..}`.
#[derive(Debug, Clone, Deserialize)]
pub struct GreetParams {
    /// Who to greet.
    pub name: String,
}

/// `"Hello, <name>!"`.
pub fn greet(p: GreetParams) -> Result<String, RpcError> {
    Ok(format!("Hello, {}!", p.name))
}

/// `echo(value)`: the value, unchanged — the very bytes it arrived as, never decoded, so
/// echoing 16 MiB costs the 16 MiB it arrived in. Params `[value]` or `{"value": ..}`.
pub fn echo(params: &RawValue) -> Result<RawValue, RpcError> {
    let value = match params.kind() {
        ValueKind::Array if params.array_len() == Some(1) => {
            params.array_items().and_then(|mut items| items.next())
        }
        ValueKind::Map => params.get("value"),
        _ => None,
    };
    value.ok_or_else(|| {
        RpcError::invalid_argument(
            "invalid params for method \"echo\": expected one value as [value] or {\"value\": …}",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: Number, b: Number) -> Pair {
        Pair { a, b }
    }

    #[test]
    fn echo_gives_back_the_same_bytes() {
        use msgwire_wire::Value;
        let inner = Value::Array(vec![Value::Binary(vec![7; 100]), "x".into()]);
        let positional = RawValue::from(Value::Array(vec![inner.clone()]));
        assert_eq!(echo(&positional).unwrap(), RawValue::from(&inner));
        let named = RawValue::from(Value::Map(vec![("value".into(), inner.clone())]));
        assert_eq!(echo(&named).unwrap(), RawValue::from(&inner));
        let err = echo(&RawValue::from(Value::Array(vec![]))).unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
    }

    #[test]
    fn integers_stay_integers_and_overflow_is_an_error() {
        assert_eq!(
            add(pair(Number::Int(1), Number::Int(2))).ok(),
            Some(Number::Int(3))
        );
        assert_eq!(
            multiply(pair(Number::Int(-6), Number::Int(7))).ok(),
            Some(Number::Int(-42))
        );
        let err = add(pair(Number::Int(i64::MAX), Number::Int(1)))
            .err()
            .map(|e| e.code);
        assert_eq!(err, Some(Code::OutOfRange));
        assert_eq!(
            add(pair(Number::Float(0.5), Number::Int(2))).ok(),
            Some(Number::Float(2.5))
        );
    }

    #[test]
    fn greet() {
        assert_eq!(
            super::greet(GreetParams { name: "Ann".into() })
                .ok()
                .as_deref(),
            Some("Hello, Ann!")
        );
    }
}
