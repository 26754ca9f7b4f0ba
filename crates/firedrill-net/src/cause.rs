//! Causes as firedrill shows them: the standard library's I/O errors read in lowercase, like
//! every other message ("connect: connection refused"), where their own text is capitalised.

/// An I/O error as a cause in a chain: its text in lowercase, its own causes after it. The
/// error itself is kept, so a caller can still ask for its kind.
#[derive(Debug)]
pub struct IoCause(pub std::io::Error);

impl std::fmt::Display for IoCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_string().to_lowercase())
    }
}

impl std::error::Error for IoCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
