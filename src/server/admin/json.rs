//! A small JSON writer for `/status` (the library has no serde): objects
//! and arrays written in order, strings escaped. The caller nests calls in
//! the shape it wants; commas are the writer's business.

use std::fmt::Write;

/// Builds one JSON document into a string.
#[derive(Debug, Default)]
pub(crate) struct Json {
    out: String,
    /// Per open container: whether it already holds an element.
    filled: Vec<bool>,
}

impl Json {
    fn separate(&mut self) {
        if let Some(filled) = self.filled.last_mut() {
            if *filled {
                self.out.push(',');
            }
            *filled = true;
        }
    }

    /// Writes `"key":` as the next element; the value follows directly.
    fn key(&mut self, key: &str) {
        self.separate();
        string(&mut self.out, key);
        self.out.push(':');
    }

    /// Opens an object (the document, or an array element).
    pub(crate) fn begin_object(&mut self) {
        self.separate();
        self.out.push('{');
        self.filled.push(false);
    }

    pub(crate) fn end_object(&mut self) {
        self.filled.pop();
        self.out.push('}');
    }

    pub(crate) fn end_array(&mut self) {
        self.filled.pop();
        self.out.push(']');
    }

    /// `"key":{` — close it with [`Json::end_object`].
    pub(crate) fn object_field(&mut self, key: &str) {
        self.key(key);
        self.out.push('{');
        self.filled.push(false);
    }

    /// `"key":[` — close it with [`Json::end_array`].
    pub(crate) fn array_field(&mut self, key: &str) {
        self.key(key);
        self.out.push('[');
        self.filled.push(false);
    }

    /// `"key":"value"`.
    pub(crate) fn str_field(&mut self, key: &str, value: &str) {
        self.key(key);
        string(&mut self.out, value);
    }

    /// `"key":value` for a number (non-finite floats become `null`).
    pub(crate) fn num_field(&mut self, key: &str, value: impl Into<f64>) {
        self.key(key);
        number(&mut self.out, value.into());
    }

    /// `"key":true|false`.
    pub(crate) fn bool_field(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
    }

    /// `"key":null`.
    pub(crate) fn null_field(&mut self, key: &str) {
        self.key(key);
        self.out.push_str("null");
    }

    /// A string array element.
    pub(crate) fn str_item(&mut self, value: &str) {
        self.separate();
        string(&mut self.out, value);
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

fn number(out: &mut String, value: f64) {
    if !value.is_finite() {
        out.push_str("null");
    } else if value.fract() == 0.0 && value.abs() < 9.0e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

fn string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_commas_and_escapes() {
        let mut j = Json::default();
        j.begin_object();
        j.str_field("a", "q\"\n");
        j.num_field("n", 3u32);
        j.num_field("f", 1.5);
        j.array_field("xs");
        j.str_item("one");
        j.str_item("two");
        j.begin_object();
        j.bool_field("ok", true);
        j.end_object();
        j.end_array();
        j.object_field("o");
        j.null_field("z");
        j.end_object();
        j.end_object();
        assert_eq!(
            j.finish(),
            r#"{"a":"q\"\n","n":3,"f":1.5,"xs":["one","two",{"ok":true}],"o":{"z":null}}"#
        );
    }
}
