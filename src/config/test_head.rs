//! The start of every unit test's config: the `[api]` section (its secret in `secret.txt` beside
//! the config) and a one-user `[watchlist]`. A macro, so tests `concat!` their sections to it.

/// `[api]` and `[watchlist]`, starting and ending with a line break.
macro_rules! test_config_head {
    () => {
        r#"
[api]
tenant_id = "00000000-0000-0000-0000-000000000000"
client_id = "11111111-1111-1111-1111-111111111111"
client_secret_file = "secret.txt"
[watchlist]
users = ["user1"]
"#
    };
}

pub(crate) use test_config_head;
