//! Argument checks. Every exported function takes its arguments as `Unknown` (typed for
//! TypeScript with `ts_args_type`) and converts them here, so a wrong type, a missing argument
//! or a bad option fails with `INVALID_ARGUMENT` naming the argument — never with napi's own
//! `InvalidArg` / `NumberExpected` thrown by the generated glue. Conversions run on the JS
//! thread; the caller moves the resulting `Result` into its Promise, so Promise-returning
//! methods reject, they never throw.

use journalkeeper::api::{self, ErrorKind};
use napi::bindgen_prelude::{Array, BufferSlice, FromNapiValue, Function};
use napi::{JsValue, Unknown, ValueType};

use crate::{to_bounded, to_u64};

pub(crate) type R<T> = Result<T, api::Error>;

fn invalid(message: String) -> api::Error {
    api::Error::new(ErrorKind::InvalidArgument, message)
}

pub(crate) fn internal(what: &str, e: napi::Error) -> api::Error {
    api::Error::new(ErrorKind::Internal, format!("reading {what}: {}", e.reason))
}

pub(crate) fn value_type(what: &str, v: &Unknown) -> R<ValueType> {
    v.get_type().map_err(|e| internal(what, e))
}

/// What a value is, for messages: `typeof`, refined to `array` / `Buffer` / `null`.
fn describe(what: &str, v: &Unknown) -> R<&'static str> {
    Ok(match value_type(what, v)? {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "boolean",
        ValueType::Number => "number",
        ValueType::String => "string",
        ValueType::Symbol => "symbol",
        ValueType::Function => "function",
        ValueType::BigInt => "bigint",
        ValueType::Object if v.is_buffer().map_err(|e| internal(what, e))? => "Buffer",
        ValueType::Object if v.is_array().map_err(|e| internal(what, e))? => "array",
        ValueType::Object => "object",
        _ => "an unsupported value",
    })
}

pub(crate) fn expected<T>(what: &str, expected: &str, v: &Unknown) -> R<T> {
    Err(invalid(format!(
        "{what} must be {expected}, got {}",
        describe(what, v)?
    )))
}

pub(crate) fn is_nullish(what: &str, v: &Unknown) -> R<bool> {
    Ok(matches!(
        value_type(what, v)?,
        ValueType::Undefined | ValueType::Null
    ))
}

/// Converts with napi's own conversion once the JS type is known to fit; a failure (e.g. in
/// a field of an options object) becomes `INVALID_ARGUMENT` prefixed with `what`.
pub(crate) fn convert<T: FromNapiValue>(what: &str, v: Unknown) -> R<T> {
    T::from_unknown(v).map_err(|e| invalid(format!("{what}: {}", e.reason)))
}

/// A JS number.
pub(crate) fn number(what: &str, v: Unknown) -> R<f64> {
    if value_type(what, &v)? != ValueType::Number {
        return expected(what, "a number", &v);
    }
    convert(what, v)
}

/// An integer in `0..=Number.MAX_SAFE_INTEGER`.
pub(crate) fn uint(what: &str, v: Unknown) -> R<u64> {
    to_u64(what, number(what, v)?)
}

/// An integer in `0..=max`.
pub(crate) fn bounded(what: &str, v: Unknown, max: u64) -> R<u64> {
    to_bounded(what, number(what, v)?, max)
}

/// A partition number (`0..=65535`).
pub(crate) fn partition(what: &str, v: Unknown) -> R<u16> {
    Ok(bounded(what, v, u16::MAX as u64)? as u16)
}

/// An array of partition numbers.
pub(crate) fn partitions(what: &str, v: Unknown) -> R<Vec<u16>> {
    array(what, "an array of partition numbers", v, partition)
}

/// A string.
pub(crate) fn string(what: &str, v: Unknown) -> R<String> {
    if value_type(what, &v)? != ValueType::String {
        return expected(what, "a string", &v);
    }
    convert(what, v)
}

/// An array of strings.
pub(crate) fn strings(what: &str, v: Unknown) -> R<Vec<String>> {
    array(what, "an array of strings", v, string)
}

/// A `Buffer`, copied.
pub(crate) fn buffer(what: &str, v: Unknown) -> R<Vec<u8>> {
    if value_type(what, &v)? != ValueType::Object
        || !v.is_buffer().map_err(|e| internal(what, e))?
    {
        return expected(what, "a Buffer", &v);
    }
    Ok(convert::<BufferSlice>(what, v)?.to_vec())
}

/// A `Buffer` or null / undefined.
pub(crate) fn nullable_buffer(what: &str, v: Unknown) -> R<Option<Vec<u8>>> {
    if is_nullish(what, &v)? {
        return Ok(None);
    }
    if value_type(what, &v)? != ValueType::Object
        || !v.is_buffer().map_err(|e| internal(what, e))?
    {
        return expected(what, "a Buffer or null", &v);
    }
    Ok(Some(convert::<BufferSlice>(what, v)?.to_vec()))
}

/// An array of `Buffer`s, copied.
pub(crate) fn buffers(what: &str, v: Unknown) -> R<Vec<Vec<u8>>> {
    array(what, "an array of Buffers", v, buffer)
}

pub(crate) fn array<T>(
    what: &str,
    kind: &str,
    v: Unknown,
    each: impl Fn(&str, Unknown) -> R<T>,
) -> R<Vec<T>> {
    if !v.is_array().map_err(|e| internal(what, e))? {
        return expected(what, kind, &v);
    }
    let a: Array = convert(what, v)?;
    (0..a.len())
        .map(|i| {
            let name = format!("{what}[{i}]");
            let item: Unknown = a
                .get(i)
                .map_err(|e| internal(&name, e))?
                .ok_or_else(|| invalid(format!("{name} is missing")))?;
            each(&name, item)
        })
        .collect()
}

/// An array of node ids (integers).
pub(crate) fn uints(what: &str, v: Unknown) -> R<Vec<u64>> {
    array(what, "an array of node ids", v, uint)
}

/// An array of objects (`#[napi(object)]`); `kind` says what the array must be.
pub(crate) fn objects<T: FromNapiValue>(what: &str, kind: &str, v: Unknown) -> R<Vec<T>> {
    array(what, kind, v, object)
}

/// A non-negative integer or null (`undefined`, a missing argument, is not accepted).
pub(crate) fn nullable_uint(what: &str, v: Unknown) -> R<Option<u64>> {
    if value_type(what, &v)? == ValueType::Null {
        return Ok(None);
    }
    if value_type(what, &v)? != ValueType::Number {
        return expected(what, "a number or null", &v);
    }
    uint(what, v).map(Some)
}

/// An optional non-negative integer: `None` for null / undefined.
pub(crate) fn optional_uint(what: &str, v: Unknown) -> R<Option<u64>> {
    if is_nullish(what, &v)? {
        return Ok(None);
    }
    uint(what, v).map(Some)
}

/// An options object (`#[napi(object)]`), or `None` for null / undefined.
pub(crate) fn options<T: FromNapiValue>(what: &str, v: Unknown) -> R<Option<T>> {
    if is_nullish(what, &v)? {
        return Ok(None);
    }
    object(what, v).map(Some)
}

/// A required object (`#[napi(object)]`).
pub(crate) fn object<T: FromNapiValue>(what: &str, v: Unknown) -> R<T> {
    if value_type(what, &v)? != ValueType::Object || v.is_array().map_err(|e| internal(what, e))? {
        return expected(what, "an object", &v);
    }
    convert(what, v)
}

/// A function.
pub(crate) fn function<'env, A, Ret>(what: &str, v: Unknown<'env>) -> R<Function<'env, A, Ret>>
where
    A: napi::bindgen_prelude::JsValuesTupleIntoVec,
{
    if value_type(what, &v)? != ValueType::Function {
        return expected(what, "a function", &v);
    }
    convert(what, v)
}

/// Either the core's TOML text or an options object.
pub(crate) enum TextOr<T> {
    Text(String),
    Object(T),
}

pub(crate) fn text_or_object<T: FromNapiValue>(what: &str, v: Unknown) -> R<TextOr<T>> {
    match value_type(what, &v)? {
        ValueType::String => Ok(TextOr::Text(convert(what, v)?)),
        ValueType::Object if !v.is_array().map_err(|e| internal(what, e))? => {
            Ok(TextOr::Object(convert(what, v)?))
        }
        _ => expected(what, "the TOML text or an options object", &v),
    }
}

/// Runs the conversions of one call's arguments (`?` inside), for the caller to move the
/// result into its Promise.
pub(crate) fn checked<T>(convert: impl FnOnce() -> R<T>) -> R<T> {
    convert()
}

/// The entries (own enumerable keys, in key order) of the object `options[prop]`, where
/// `options` may be null / undefined and `options[prop]` may be absent: `None` then.
pub(crate) fn nullable_object_property<'env>(
    what: &str,
    options: Unknown<'env>,
    prop: &str,
) -> R<Option<Vec<(String, Unknown<'env>)>>> {
    use napi::bindgen_prelude::{JsObjectValue, Object};
    if is_nullish(what, &options)? {
        return Ok(None);
    }
    if value_type(what, &options)? != ValueType::Object
        || options.is_array().map_err(|e| internal(what, e))?
    {
        return expected(what, "an object", &options);
    }
    let o: Object = convert(what, options)?;
    let name = format!("{what}.{prop}");
    let v: Unknown = o.get_named_property(prop).map_err(|e| internal(&name, e))?;
    if is_nullish(&name, &v)? {
        return Ok(None);
    }
    if value_type(&name, &v)? != ValueType::Object
        || v.is_array().map_err(|e| internal(&name, e))?
    {
        return expected(&name, "an object", &v);
    }
    let m: Object = convert(&name, v)?;
    let mut keys = Object::keys(&m).map_err(|e| internal(&name, e))?;
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let item: Unknown = m
                .get_named_property(&k)
                .map_err(|e| internal(&format!("{name}.{k}"), e))?;
            Ok((k, item))
        })
        .collect::<R<Vec<_>>>()
        .map(Some)
}
