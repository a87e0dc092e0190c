//! JSON in, JSON out: the protobuf JSON mapping (prost-reflect's serde),
//! with one deviation on request: `--bytes text` reads and writes `bytes`
//! fields as UTF-8 text instead of base64, since the seed's `.proto` files
//! keep names and passwords in `bytes`.
//!
//! Replies print every field, defaults included (`"sucess": false` says
//! more than a missing key).

use base64::Engine as _;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage as _, SerializeOptions,
};
use serde_json::Value;

use crate::error::{Error, Result};

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How `bytes` fields look in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BytesAs {
    /// Base64, as the protobuf JSON mapping says.
    Base64,
    /// UTF-8 text (a reply that is not UTF-8 stays base64, with a warning).
    Text,
}

/// Parses `text` as a `desc` message.
pub(crate) fn to_message(
    desc: &MessageDescriptor,
    text: &str,
    bytes: BytesAs,
) -> Result<DynamicMessage> {
    let mut value: Value = serde_json::from_str(text)
        .map_err(|e| Error::new(format!("the request is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::new(format!(
            "the request must be a JSON object (a {}), not {value}",
            desc.full_name()
        )));
    }
    if bytes == BytesAs::Text {
        walk_message(&mut value, desc, "", &mut |v, _| {
            if let Value::String(s) = v {
                *s = BASE64.encode(s.as_bytes());
            }
        });
    }
    // The message's own errors name the field, not where it is: check the
    // fields one by one so the error says which one is wrong.
    check_fields(&value, desc, "")?;
    DynamicMessage::deserialize(desc.clone(), value).map_err(|e| {
        Error::new(format!(
            "the request does not fit {}: {e}",
            desc.full_name()
        ))
    })
}

/// `message` as pretty JSON.
pub(crate) fn to_json(message: &DynamicMessage, bytes: BytesAs) -> Result<String> {
    serde_json::to_string_pretty(&to_value(message, bytes)?)
        .map_err(|e| Error::new(format!("cannot write JSON: {e}")))
}

/// `message` as JSON on one line (a stream's messages, JSON lines).
pub(crate) fn to_json_line(message: &DynamicMessage, bytes: BytesAs) -> Result<String> {
    serde_json::to_string(&to_value(message, bytes)?)
        .map_err(|e| Error::new(format!("cannot write JSON: {e}")))
}

/// `message` in the protobuf JSON mapping (`bytes` as asked).
fn to_value(message: &DynamicMessage, bytes: BytesAs) -> Result<Value> {
    let options = SerializeOptions::new().skip_default_fields(false);
    let mut value = message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| Error::new(format!("cannot write the reply as JSON: {e}")))?;
    if bytes == BytesAs::Text {
        walk_message(&mut value, &message.descriptor(), "", &mut |v, path| {
            let Value::String(s) = v else { return };
            match BASE64.decode(s.as_bytes()).map(String::from_utf8) {
                Ok(Ok(text)) => *s = text,
                _ => eprintln!("mprpc: warning: {path} is not UTF-8 text; shown as base64"),
            }
        });
    }
    Ok(value)
}

/// Checks each field of `value` (a JSON object) against `desc`, so an
/// error names the field's path (`result.errcode`).
fn check_fields(value: &Value, desc: &MessageDescriptor, path: &str) -> Result<()> {
    let Value::Object(map) = value else {
        return Ok(());
    };
    for (key, field_value) in map {
        let here = join(path, key);
        let Some(field) = field_of(desc, key) else {
            let known: Vec<String> = desc.fields().map(|f| f.json_name().to_owned()).collect();
            return Err(Error::new(format!(
                "{} has no field '{here}' (its fields: {})",
                desc.full_name(),
                known.join(", ")
            )));
        };
        if let Kind::Message(inner) = field.kind() {
            if !field.is_map() && !is_well_known(&inner) {
                match field_value {
                    Value::Array(items) if field.is_list() => {
                        for (i, item) in items.iter().enumerate() {
                            check_fields(item, &inner, &format!("{here}[{i}]"))?;
                        }
                    }
                    other => check_fields(other, &inner, &here)?,
                }
            }
        }
        let mut one = serde_json::Map::new();
        one.insert(key.clone(), field_value.clone());
        if let Err(e) = DynamicMessage::deserialize(desc.clone(), Value::Object(one)) {
            return Err(Error::new(format!(
                "field '{here}' ({}) cannot be {field_value}: {e}{}",
                type_name(&field),
                bytes_hint(&field, field_value)
            )));
        }
    }
    Ok(())
}

/// For a `bytes` field given plain text: how protobuf's JSON mapping wants
/// it, with the text encoded.
fn bytes_hint(field: &FieldDescriptor, value: &Value) -> String {
    match (field.kind(), value) {
        (Kind::Bytes, Value::String(text)) => format!(
            "; bytes fields take base64 in protobuf's JSON mapping: \"{}\" is \"{}\" \
             (or pass --bytes text to give bytes as text)",
            text,
            BASE64.encode(text.as_bytes())
        ),
        _ => String::new(),
    }
}

/// Calls `f` on every `bytes` value under a `desc` message, with its path.
fn walk_message(
    value: &mut Value,
    desc: &MessageDescriptor,
    path: &str,
    f: &mut dyn FnMut(&mut Value, &str),
) {
    let Value::Object(map) = value else { return };
    for (key, v) in map.iter_mut() {
        let Some(field) = field_of(desc, key) else {
            continue;
        };
        let here = join(path, key);
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                continue;
            };
            let value_kind = entry.map_entry_value_field().kind();
            if let Value::Object(entries) = v {
                for (k, item) in entries.iter_mut() {
                    walk_kind(item, &value_kind, &format!("{here}[{k}]"), f);
                }
            }
        } else if let (true, Value::Array(items)) = (field.is_list(), &mut *v) {
            for (i, item) in items.iter_mut().enumerate() {
                walk_kind(item, &field.kind(), &format!("{here}[{i}]"), f);
            }
        } else {
            walk_kind(v, &field.kind(), &here, f);
        }
    }
}

fn walk_kind(value: &mut Value, kind: &Kind, path: &str, f: &mut dyn FnMut(&mut Value, &str)) {
    match kind {
        Kind::Bytes => f(value, path),
        Kind::Message(m) if !is_well_known(m) => walk_message(value, m, path, f),
        _ => {}
    }
}

/// The field a JSON key names: its JSON name or its `.proto` name.
fn field_of(desc: &MessageDescriptor, key: &str) -> Option<FieldDescriptor> {
    desc.get_field_by_json_name(key)
        .or_else(|| desc.get_field_by_name(key))
}

/// `google.protobuf.*` types have JSON forms of their own.
fn is_well_known(desc: &MessageDescriptor) -> bool {
    desc.package_name() == "google.protobuf"
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A field's type as the `.proto` file writes it (`repeated bytes`,
/// `map<string, int32>`, `fixbug.ResultCode`).
pub(crate) fn type_name(field: &FieldDescriptor) -> String {
    if field.is_map() {
        if let Kind::Message(entry) = field.kind() {
            return format!(
                "map<{}, {}>",
                kind_name(&entry.map_entry_key_field().kind()),
                kind_name(&entry.map_entry_value_field().kind())
            );
        }
    }
    let base = kind_name(&field.kind());
    if field.is_list() {
        format!("repeated {base}")
    } else {
        base
    }
}

/// A scalar's `.proto` keyword, or a message's or enum's full name.
pub(crate) fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
        Kind::Message(m) => m.full_name().into(),
        Kind::Enum(e) => e.full_name().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;

    /// `fixbug.LoginRequest` and friends, compiled from the repository's protos.
    fn pool() -> DescriptorPool {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto");
        protox::Compiler::new([dir])
            .unwrap()
            .open_files(["user.proto", "friend.proto"])
            .unwrap()
            .descriptor_pool()
    }

    fn message(name: &str) -> MessageDescriptor {
        pool().get_message_by_name(name).unwrap()
    }

    #[test]
    fn text_bytes_round_trip_and_base64_is_the_default() {
        let desc = message("fixbug.LoginRequest");
        let msg = to_message(
            &desc,
            r#"{"name":"zhang san","pwd":"123456"}"#,
            BytesAs::Text,
        )
        .unwrap();
        let json: Value = serde_json::from_str(&to_json(&msg, BytesAs::Text).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "zhang san", "pwd": "123456"})
        );
        let json: Value = serde_json::from_str(&to_json(&msg, BytesAs::Base64).unwrap()).unwrap();
        assert_eq!(json["name"], BASE64.encode("zhang san"));
        assert!(to_message(&desc, r#"{"name":"zhang san"}"#, BytesAs::Base64).is_err());
    }

    #[test]
    fn repeated_and_nested_bytes_are_text_too_and_defaults_are_printed() {
        let desc = message("fixbug.GetFriendsListResponse");
        let msg = to_message(
            &desc,
            r#"{"friends":["a b","c"],"result":{"errmsg":"no"}}"#,
            BytesAs::Text,
        )
        .unwrap();
        let json: Value = serde_json::from_str(&to_json(&msg, BytesAs::Text).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"friends": ["a b", "c"], "result": {"errcode": 0, "errmsg": "no"}})
        );
    }

    #[test]
    fn errors_name_the_problem_and_the_field() {
        let desc = message("fixbug.RegisterRequest");
        let err = to_message(&desc, r#"{"id": 1,"#, BytesAs::Text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = to_message(&desc, r#"{"id": "abc"}"#, BytesAs::Text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("field 'id' (uint32)"), "{err}");
        let err = to_message(&desc, r#"{"ident": 1}"#, BytesAs::Text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no field 'ident'") && err.contains("id, name, pwd"),
            "{err}"
        );
        let err = to_message(&desc, "[1]", BytesAs::Text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be a JSON object"), "{err}");
        let nested = message("fixbug.LoginResponse");
        let err = to_message(&nested, r#"{"result": {"errcode": true}}"#, BytesAs::Text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("field 'result.errcode' (int32)"), "{err}");
    }
}
