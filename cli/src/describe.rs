//! `mprpc describe Service[.Method]`: the rpcs and every message and enum
//! their requests and responses use, written as `.proto` text.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use prost_reflect::{EnumDescriptor, Kind, MessageDescriptor, MethodDescriptor};

use crate::error::Result;
use crate::json::type_name;
use crate::schema::{SchemaArgs, Schemas, ServiceSchema};
use crate::target::Target;

/// Runs `describe`, printing the schema on stdout.
pub(crate) fn run(target: &Target, args: &SchemaArgs, name: &str) -> Result<()> {
    let discover = target.discover()?;
    let schemas = Schemas::new(target, args, &*discover);
    // `a.B.C` may be service `a.B.C` or method `C` of `a.B`: try both.
    let (schema, method) = match schemas.service(name) {
        Ok(schema) => (schema, None),
        Err(whole) => match name.rsplit_once('.') {
            Some((service, method)) => match schemas.service(service) {
                Ok(schema) => {
                    let method = schema.method(method)?;
                    (schema, Some(method))
                }
                Err(_) => return Err(whole),
            },
            None => return Err(whole),
        },
    };
    print!("{}", render(&schema, method.as_ref()));
    Ok(())
}

/// The service (or one method) and the types it uses, as `.proto` text.
fn render(schema: &ServiceSchema, only: Option<&MethodDescriptor>) -> String {
    let service = &schema.descriptor;
    let methods: Vec<MethodDescriptor> = match only {
        Some(m) => vec![m.clone()],
        None => service.methods().collect(),
    };
    let mut out = String::new();
    let _ = writeln!(out, "// called as '{}'", schema.wire);
    let _ = writeln!(out, "service {} {{", service.full_name());
    for m in &methods {
        let _ = writeln!(
            out,
            "  rpc {}({}) returns ({});",
            m.name(),
            m.input().full_name(),
            m.output().full_name()
        );
    }
    out.push_str("}\n");
    let mut types = Types::default();
    for m in &methods {
        types.message(&m.input());
        types.message(&m.output());
    }
    for message in &types.messages {
        out.push('\n');
        write_message(message, &mut out);
    }
    for e in &types.enums {
        out.push('\n');
        write_enum(e, &mut out);
    }
    out
}

/// The messages and enums reachable from some roots, each once, in the
/// order first met.
#[derive(Default)]
struct Types {
    seen: BTreeSet<String>,
    messages: Vec<MessageDescriptor>,
    enums: Vec<EnumDescriptor>,
}

impl Types {
    fn message(&mut self, m: &MessageDescriptor) {
        if !self.seen.insert(m.full_name().to_owned()) {
            return;
        }
        if !m.is_map_entry() {
            self.messages.push(m.clone());
        }
        for field in m.fields() {
            match field.kind() {
                Kind::Message(inner) => self.message(&inner),
                Kind::Enum(e) if self.seen.insert(e.full_name().to_owned()) => self.enums.push(e),
                _ => {}
            }
        }
    }
}

fn write_message(m: &MessageDescriptor, out: &mut String) {
    let _ = writeln!(out, "message {} {{", m.full_name());
    for field in m.fields() {
        let oneof = field
            .containing_oneof()
            .filter(|o| !o.is_synthetic())
            .map(|o| format!("  // oneof {}", o.name()))
            .unwrap_or_default();
        let optional = if field.supports_presence()
            && field.containing_oneof().is_some_and(|o| o.is_synthetic())
        {
            "optional "
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {optional}{} {} = {};{oneof}",
            type_name(&field),
            field.name(),
            field.number()
        );
    }
    out.push_str("}\n");
}

fn write_enum(e: &EnumDescriptor, out: &mut String) {
    let _ = writeln!(out, "enum {} {{", e.full_name());
    for value in e.values() {
        let _ = writeln!(out, "  {} = {};", value.name(), value.number());
    }
    out.push_str("}\n");
}
