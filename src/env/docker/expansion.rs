//! `${name}` and `${name:port}` in probe, step and fault strings: replaced by the container's
//! address on its network (and the port), looked up at each use, because a container that
//! was restarted or reconnected may have moved.

use super::Inner;

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// A `${` has no `}`.
    #[error("`{text}`: `${{` is not closed by `}}`")]
    Unclosed {
        /// The whole string.
        text: String,
    },
    /// The name is no container of the environment.
    #[error("`{text}` names no container `{name}` of the environment")]
    UnknownContainer {
        /// The whole string.
        text: String,
        /// The name.
        name: String,
    },
}

impl Inner {
    /// `s` with every `${name}` replaced by that container's address and `${name:port}` by
    /// its address and port.
    pub(super) fn expand(&self, s: &str) -> Result<String, ExpandError> {
        let addresses = self.addresses.borrow();
        expand(s, |name| addresses.get(name).cloned())
    }

    /// Each of `args` expanded (see [`Self::expand`]).
    pub(super) fn expand_all(&self, args: &[String]) -> Result<Vec<String>, ExpandError> {
        args.iter().map(|a| self.expand(a)).collect()
    }
}

/// Replaces `${name}` and `${name:port}` using `address`; an unknown name is an error. The
/// load-time checks pass an `address` that knows only the names, to find unknown ones early.
pub(super) fn expand(s: &str, address: impl Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| ExpandError::Unclosed { text: s.into() })?;
        let (name, port) = match after[..end].split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (&after[..end], None),
        };
        let ip = address(name).ok_or_else(|| ExpandError::UnknownContainer { text: s.into(), name: name.into() })?;
        out.push_str(&ip);
        if let Some(port) = port {
            out.push(':');
            out.push_str(port);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_container_addresses() {
        let addr = |n: &str| (n == "db").then(|| "172.20.0.5".to_string());
        assert_eq!(expand("host=${db} port=5432", addr).unwrap(), "host=172.20.0.5 port=5432");
        assert_eq!(expand("http://${db:8080}/health", addr).unwrap(), "http://172.20.0.5:8080/health");
        assert_eq!(expand("plain", addr).unwrap(), "plain");
        assert!(expand("${web:80}", addr).unwrap_err().to_string().contains("no container `web`"));
        assert!(expand("${db", addr).unwrap_err().to_string().contains("not closed"));
    }
}
