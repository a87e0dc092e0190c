//! Every setting the framework reads, each declared once.
//!
//! An options struct ([`ServerOptions`], [`ChannelOptions`], ...) is
//! declared with the `options!` table below: per field its type, default,
//! doc and, when a config file can set it, its key and how the key's text
//! is read (a `kinds` marker). From that one declaration follow the
//! struct itself (non-exhaustive, so a new option breaks no caller), its
//! `Default`, a builder setter per field (`ServerOptions::default()
//! .reactor_threads(2)`), and its key table, which the config file's
//! parser, the `/status` page's "settings in effect" and the table in
//! `docs/configuration.md` all read.
//!
//! These structs live here, not beside the server and client that use
//! them, so that [`Config`](crate::Config) (made of them) depends on
//! neither side.

pub(crate) mod kinds;

/// Declares an options struct and its config keys; see the module docs.
///
/// ```text
/// options! {
///     /// What the struct is.
///     pub struct ServerOptions("provider") {
///         /// What the field means (also its line in the docs table).
///         ["worker_threads", Positive]
///         worker_threads: usize = 4,
///         /// A field no config key sets.
///         shutdown_grace: Duration = Duration::from_secs(5),
///     }
/// }
/// ```
macro_rules! options {
    (
        $(#[doc = $struct_doc:literal])*
        pub struct $name:ident ($side:literal) {
            $(
                $(#[doc = $doc:literal])*
                $([$key:literal, $kind:ty])?
                $field:ident: $ty:ty = $default:expr,
            )*
        }
    ) => {
        $(#[doc = $struct_doc])*
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl $name {
            $(
                #[doc = concat!("These options with `", stringify!($field), "` set to `value`.")]
                #[must_use]
                pub fn $field(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }

        impl $crate::options::Section for $name {
            const SIDE: &'static str = $side;
            const FIELDS: &'static [Option<$crate::options::Key<Self>>] = &[
                $( options!(@key $name, $field, $ty, concat!($($doc, "\n"),*) $(, $key, $kind)?), )*
            ];
        }
    };
    (@key $name:ident, $field:ident, $ty:ty, $doc:expr) => {
        None
    };
    (@key $name:ident, $field:ident, $ty:ty, $doc:expr, $key:literal, $kind:ty) => {
        Some($crate::options::Key {
            name: $key,
            doc: $doc,
            set: |options: &mut $name, value: &str| {
                options.$field = <$kind as $crate::options::kinds::Kind<$ty>>::parse(value)?;
                Ok(())
            },
            show: |options: &$name| {
                <$kind as $crate::options::kinds::Kind<$ty>>::show(&options.$field)
            },
        })
    };
}

mod channel;
mod concurrency;
mod files;
mod registry;
mod server;

pub use channel::ChannelOptions;
pub use concurrency::{ConcurrencyLimiter, MaxConcurrency};
pub use files::{ClientTlsFiles, LogOptions, ProviderOptions, ServerTlsFiles};
pub use registry::{RegistryKind, RegistryOptions};
pub use server::{AdminOptions, ServerOptions};

/// One config key of an options struct `T`: its name, its doc, and how
/// it is read into `T` and shown from it.
pub(crate) struct Key<T> {
    /// The key as a config file spells it.
    pub(crate) name: &'static str,
    /// The field's doc comment: what the key means.
    pub(crate) doc: &'static str,
    /// Reads the key's value into its field, or says what is wrong.
    pub(crate) set: fn(&mut T, &str) -> Result<(), String>,
    /// The field's value as the config file would spell it.
    pub(crate) show: fn(&T) -> String,
}

/// An options struct declared with `options!`: who reads it and its keys.
pub(crate) trait Section: Default + 'static {
    /// Which side reads these options ("provider", "consumer", ...).
    const SIDE: &'static str;
    /// One entry per field: its key, or `None` when no key sets it.
    const FIELDS: &'static [Option<Key<Self>>];
}

/// The key table of an options struct, without knowing its type: what the
/// config parser walks, section by section.
pub(crate) trait Settings {
    /// Sets `key` if this section has it: `None` when it does not.
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>>;
    /// This section's keys with their values, as a config file spells them.
    fn shown(&self) -> Vec<(&'static str, String)>;
    /// This section's keys for the docs table, with their defaults.
    fn rows(&self) -> Vec<KeyRow>;
}

impl<T: Section> Settings for T {
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        let row = T::FIELDS.iter().flatten().find(|k| k.name == key)?;
        Some((row.set)(self, value))
    }

    fn shown(&self) -> Vec<(&'static str, String)> {
        let keys = T::FIELDS.iter().flatten();
        keys.map(|k| (k.name, (k.show)(self))).collect()
    }

    fn rows(&self) -> Vec<KeyRow> {
        let defaults = T::default();
        let keys = T::FIELDS.iter().flatten();
        keys.map(|k| KeyRow {
            name: k.name,
            default: (k.show)(&defaults),
            side: T::SIDE.to_owned(),
            doc: one_paragraph(k.doc),
        })
        .collect()
    }
}

/// One config key as the documentation shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRow {
    pub(crate) name: &'static str,
    /// The default, as a config file would spell it ("" when unset).
    pub(crate) default: String,
    /// Who reads it: "provider", "consumer", or both.
    pub(crate) side: String,
    pub(crate) doc: String,
}

/// A doc comment's lines joined into one paragraph.
fn one_paragraph(doc: &str) -> String {
    doc.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The Markdown table of `rows`: one line per key; a key that several
/// sides read (`max_frame_size`) is one line naming them all, with the
/// first side's doc.
#[cfg(test)]
pub(crate) fn markdown_table(rows: &[KeyRow]) -> String {
    let mut merged: Vec<KeyRow> = Vec::new();
    for row in rows {
        match merged.iter_mut().find(|m| m.name == row.name) {
            Some(first) if !first.side.contains(&row.side) => {
                first.side = format!("{}, {}", first.side, row.side);
            }
            Some(_) => {}
            None => merged.push(row.clone()),
        }
    }
    let mut table = String::from("| key | default | read by | meaning |\n|---|---|---|---|\n");
    for row in &merged {
        let default = match row.default.as_str() {
            "" => "—".to_owned(),
            value => format!("`{value}`"),
        };
        let doc = row.doc.replace('|', "\\|");
        table.push_str(&format!(
            "| `{}` | {default} | {} | {doc} |\n",
            row.name, row.side
        ));
    }
    table
}
