//! The settings a running server shows on `/status`: the config file's
//! keys as read, overlaid with what is in effect (defaults, values fitted
//! at start). Every key the server reads comes from its options' key
//! table, so a new option shows up here by being declared.

use std::collections::BTreeMap;

use crate::options::{ServerOptions, Settings};

/// The config file's keys overlaid with `options` in effect, plus
/// `listen` (the address asked for); secrets are redacted later, by the
/// admin pages.
pub(crate) fn settings_in_effect(
    options: &ServerOptions,
    config_keys: &[(String, String)],
) -> Vec<(String, String)> {
    let mut settings: BTreeMap<String, String> = config_keys.iter().cloned().collect();
    let effective = options.shown().into_iter().chain(options.admin.shown());
    for (key, value) in effective {
        settings.insert(key.to_owned(), value);
    }
    settings.insert("listen".into(), options.addr.clone());
    settings.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_key_shows_its_value_in_effect_over_the_file() {
        let options = ServerOptions::default().worker_threads(3);
        let file = [
            ("worker_threads".to_owned(), "9".to_owned()),
            ("my_app_key".to_owned(), "x".to_owned()),
        ];
        let settings: BTreeMap<_, _> = settings_in_effect(&options, &file).into_iter().collect();
        assert_eq!(settings["worker_threads"], "3", "the value in effect wins");
        assert_eq!(settings["my_app_key"], "x");
        assert_eq!(settings["idle_timeout_ms"], "300000");
        assert_eq!(settings["admin"], "auto");
        assert_eq!(settings["listen"], "127.0.0.1:0");
    }
}
