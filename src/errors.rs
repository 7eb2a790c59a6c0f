//! How errors are printed. The house rule: an error's own message says what failed, in its
//! words (the file, the address, the sink), and its cause is returned by `source()`, never
//! repeated in the message. Whatever shows an error to a person shows the whole chain: the
//! binary's edge through `anyhow`'s `{:#}`, logs and reports through [`Chain`]. Printing the
//! cause in both places made `anyhow` write it twice ("cannot open x: denied: denied").

use std::error::Error;
use std::fmt;

/// Shows an error and each of its causes, joined by ": " (what `anyhow`'s `{:#}` writes).
pub struct Chain<'a>(pub &'a (dyn Error + 'a));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open {path}")]
    struct Open {
        path: String,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_chain_shows_each_cause_once() {
        let err = Open {
            path: "/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(Chain(&err).to_string(), "cannot open /x: permission denied");
        let edge = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(edge, "cannot open /x: permission denied");
    }
}
