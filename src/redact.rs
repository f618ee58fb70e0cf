//! URLs as they may be shown: in a log line, an error, a CLI message. A
//! database or registry URL can carry a password twice, in its user info
//! (`postgres://app:s3cret@db/hs`) and in its query
//! (`?password=s3cret`, which libpq and sqlx both accept), and a query can
//! carry a token. Every URL hoursync prints goes through [`redact_url`].

/// Query keys whose values are masked, matched case-insensitively as parts
/// of the key: `password`, `sslpassword`, `passfile`, `pwd`, `api_token`,
/// `client_secret`, `apikey`, `sslkey`… Masking a key that holds no secret
/// (a key file's path) costs a little detail; missing one leaks a password.
const SECRET_KEY_PARTS: [&str; 5] = ["pass", "pwd", "token", "secret", "key"];

/// What replaces a secret.
const MASK: &str = "***";

/// `url` with its user info (name and password) replaced by `***` and the
/// value of every password-like query parameter by `***`. Parsed with the
/// `url` crate, so what counts as user info and query is what a client
/// would take as such. A string that is not a URL is masked by the same
/// rules as text: anything before an `@` and password-like `key=value`
/// pairs.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        // `app:s3cret@db/hs` parses, as a path of scheme `app`.
        Ok(url) if !url.cannot_be_a_base() => redact_parsed(url),
        _ => redact_text(raw),
    }
}

fn redact_parsed(mut url: url::Url) -> String {
    if (!url.username().is_empty() || url.password().is_some()) && url.set_password(None).is_ok() {
        // Cannot fail once the password could be set: the URL has a host.
        let _ = url.set_username(MASK);
    }
    if let Some(query) = url.query() {
        let masked = redact_pairs(query, '&');
        url.set_query(Some(&masked));
    }
    url.to_string()
}

/// A non-URL, or one without an authority (`sqlite:h.db`): the text after
/// the last `@` only, and masked pairs in the query or in `key=value` words.
fn redact_text(raw: &str) -> String {
    let text = match raw.rfind('@') {
        Some(at) => match raw[..at].find("://") {
            Some(s) => format!("{}://{MASK}@{}", &raw[..s], &raw[at + 1..]),
            None => format!("{MASK}@{}", &raw[at + 1..]),
        },
        None => raw.to_string(),
    };
    text.split(' ')
        .map(|word| match word.split_once('?') {
            Some((head, query)) => format!("{head}?{}", redact_pairs(query, '&')),
            None => redact_pairs(word, '&'),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `pairs` (`k=v` joined by `sep`) with each secret value masked; the rest
/// as written, so the message shows what the user typed.
fn redact_pairs(pairs: &str, sep: char) -> String {
    pairs
        .split(sep)
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret_key(key) => format!("{key}={MASK}"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join(&sep.to_string())
}

/// Whether a query key (percent-encoded as written) names a secret.
pub(crate) fn is_secret_key(key: &str) -> bool {
    let key: String = url::form_urlencoded::parse(format!("{key}=").as_bytes())
        .next()
        .map(|(k, _)| k.to_lowercase())
        .unwrap_or_default();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_and_tokens_never_survive_redaction() {
        let cases = [
            (
                "postgres://app:s3cret@db:5432/hs",
                "postgres://***@db:5432/hs",
            ),
            (
                "postgres://u:p@h/db?password=x&sslmode=require",
                "postgres://***@h/db?password=***&sslmode=require",
            ),
            (
                "postgresql://h/db?user=app&PassWord=x&sslmode=verify-full&sslrootcert=/etc/ca.pem",
                "postgresql://h/db?user=app&PassWord=***&sslmode=verify-full&sslrootcert=/etc/ca.pem",
            ),
            (
                "postgres://app@db/hs?sslpassword=k&passfile=/x&pwd=1",
                "postgres://***@db/hs?sslpassword=***&passfile=***&pwd=***",
            ),
            ("postgres://:onlypass@db/hs", "postgres://***@db/hs"),
            (
                "postgres://db/hs?%70assword=x",
                "postgres://db/hs?%70assword=***",
            ),
            (
                "https://registry.example/teacher?api_token=t&client_secret=s&apikey=k&page=2",
                "https://registry.example/teacher?api_token=***&client_secret=***&apikey=***&page=2",
            ),
            (
                "https://user:pw@registry.example/teacher",
                "https://***@registry.example/teacher",
            ),
            (
                "sqlite://hoursync.db?mode=rwc",
                "sqlite://hoursync.db?mode=rwc",
            ),
            (
                "sqlite:///var/lib/hoursync/h.db?mode=rwc",
                "sqlite:///var/lib/hoursync/h.db?mode=rwc",
            ),
            ("sqlite::memory:", "sqlite::memory:"),
            (
                "sqlite:h.db?mode=rwc&password=x",
                "sqlite:h.db?mode=rwc&password=***",
            ),
            (
                "http://127.0.0.1:8700/teacher",
                "http://127.0.0.1:8700/teacher",
            ),
            // Not URLs: still no password.
            ("hoursync.db", "hoursync.db"),
            ("app:s3cret@db/hs", "***@db/hs"),
            (
                "host=db user=app password=s3cret",
                "host=db user=app password=***",
            ),
            ("", ""),
        ];
        for (raw, shown) in cases {
            assert_eq!(redact_url(raw), shown, "redacting {raw:?}");
        }
    }
}
