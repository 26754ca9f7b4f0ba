//! Where records are kept: a [`ReportsLocation`] (a folder, or an S3 prefix where many teams'
//! drills land in one place), opened as [`Reports`], which lists, reads and writes records the
//! same way for both. The parsing and checking of a record's text stay in the core
//! ([`crate::record`]); this module only moves bytes.
//!
//! An object of an S3 prefix is named by its URL (`s3://bucket/prefix/name.json`) wherever a
//! record's file is named (results, history, integrity checks), so every caller prints and
//! compares it as it does a file.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::record::{
    self, fallback_dirs, DrillRecord, History, Integrity, LoadError, Loaded, RecordError, Saved, Skipped,
};

/// Where records are written and read: the argument of `--reports`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportsLocation {
    /// A folder.
    Dir(PathBuf),
    /// The objects under a prefix of an S3 bucket (`s3://bucket/prefix`).
    S3 {
        /// The bucket.
        bucket: String,
        /// The prefix, without a trailing `/`; empty for the whole bucket.
        prefix: String,
    },
}

impl FromStr for ReportsLocation {
    type Err = StoreError;

    fn from_str(given: &str) -> Result<Self, StoreError> {
        let Some((scheme, rest)) = given.split_once("://") else { return Ok(ReportsLocation::Dir(given.into())) };
        if scheme != "s3" {
            return Err(StoreError::Scheme { given: given.into(), scheme: scheme.into() });
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's own rule for bucket names, so that a typo is refused here rather than after a drill.
        let valid = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid {
            return Err(StoreError::S3Url { given: given.into() });
        }
        Ok(ReportsLocation::S3 { bucket: bucket.into(), prefix: prefix.trim_matches('/').into() })
    }
}

impl std::fmt::Display for ReportsLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportsLocation::Dir(dir) => write!(f, "{}", dir.display()),
            ReportsLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            ReportsLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Why records could not be kept or read where they belong.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An `s3://` location without a bucket name S3 would take.
    #[error("`{given}`: expected s3://BUCKET/PREFIX, the bucket named as S3 names them (3-63 lowercase letters, digits, dots and hyphens)")]
    S3Url {
        /// The argument.
        given: String,
    },
    /// A URL of another scheme: read as a folder, it would make a folder named `gs:`.
    #[error("`{given}`: records are kept in a folder or at s3://BUCKET/PREFIX, not at a {scheme}:// URL")]
    Scheme {
        /// The argument.
        given: String,
        /// Its scheme.
        scheme: String,
    },
    /// An S3 location, in a build that cannot reach S3.
    #[error("failed to use {location}: this firedrill was built without the aws feature")]
    NoAws {
        /// The location.
        location: String,
    },
    /// A folder could not take a record.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A folder of records could not be listed.
    #[error("failed to read {}", dir.display())]
    ReadDir {
        /// The folder.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The runtime the S3 client runs on could not start.
    #[error("failed to start the runtime of the S3 client")]
    Runtime(#[source] std::io::Error),
    /// An S3 request failed.
    #[error("failed to {action} {url}")]
    S3 {
        /// What was being done: `write`, `read`, `list`, `delete`.
        action: &'static str,
        /// The object, or the prefix.
        url: String,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A record's object exists already: a record is evidence, never replaced.
    #[error("failed to write {url}: an object of that name exists, and a record is never overwritten")]
    Exists {
        /// The object.
        url: String,
    },
    /// The location cannot take records: found before a drill, so nothing was run.
    #[error("failed to write records to {location}; nothing was run")]
    Unwritable {
        /// The location.
        location: String,
        /// Why.
        #[source]
        source: Box<StoreError>,
    },
}

/// A [`ReportsLocation`], opened: the one way records are listed, read and written.
pub enum Reports {
    /// A folder.
    Dir(PathBuf),
    /// An S3 prefix.
    #[cfg(feature = "aws")]
    S3(s3::S3Reports),
}

impl Reports {
    /// Opens `location`; for S3, reads the standard AWS configuration (environment, profiles,
    /// `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` for an emulator), without a request yet.
    pub fn open(location: &ReportsLocation) -> Result<Self, StoreError> {
        match location {
            ReportsLocation::Dir(dir) => Ok(Reports::Dir(dir.clone())),
            #[cfg(feature = "aws")]
            ReportsLocation::S3 { bucket, prefix } => {
                Self::open_s3(bucket, prefix, crate::env::aws::connect::standard())
            }
            #[cfg(not(feature = "aws"))]
            ReportsLocation::S3 { .. } => Err(StoreError::NoAws { location: location.to_string() }),
        }
    }

    /// An S3 prefix, configured by `loader` (tests hand one with fixed credentials and an
    /// emulator's endpoint; [`Reports::open`], the standard chain).
    #[cfg(feature = "aws")]
    pub fn open_s3(bucket: &str, prefix: &str, loader: aws_config::ConfigLoader) -> Result<Self, StoreError> {
        Ok(Reports::S3(s3::S3Reports::open(bucket, prefix, loader)?))
    }

    /// Where a record goes, in order, when this location cannot take it: for a folder,
    /// [`fallback_dirs`]; for an S3 prefix, first the local `reports/` folder, where `run` keeps
    /// records when no `--reports` is given, so that it is found where one looks first.
    pub fn fallbacks(&self) -> Vec<PathBuf> {
        match self {
            Reports::Dir(_) => fallback_dirs(),
            #[cfg(feature = "aws")]
            Reports::S3(_) => std::iter::once(PathBuf::from("reports")).chain(fallback_dirs()).collect(),
        }
    }

    /// The location, as the user gave it.
    pub fn location(&self) -> ReportsLocation {
        match self {
            Reports::Dir(dir) => ReportsLocation::Dir(dir.clone()),
            #[cfg(feature = "aws")]
            Reports::S3(s3) => s3.location(),
        }
    }

    /// Checks that records can be written before a drill changes anything, by writing and
    /// removing a probe the way records are written.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        match self {
            Reports::Dir(dir) => Ok(record::check_writable(dir)?),
            #[cfg(feature = "aws")]
            Reports::S3(s3) => s3
                .check_writable()
                .map_err(|e| StoreError::Unwritable { location: self.location().to_string(), source: Box::new(e) }),
        }
    }

    /// Writes a record, or, when its place cannot take it, keeps it in the first of
    /// `fallbacks` (by default [`Reports::fallbacks`]) that can: a record is evidence of a drill
    /// that cannot be run again for free. Fails with the location's error when nowhere could
    /// take it.
    pub fn write_record(
        &self,
        name: &str,
        contents: &str,
        fallbacks: &[PathBuf],
    ) -> Result<Saved<StoreError>, StoreError> {
        match self {
            Reports::Dir(dir) => Ok(match record::write_record(dir, name, contents, fallbacks)? {
                Saved::InPlace(path) => Saved::InPlace(path),
                Saved::Fallback { path, error } => Saved::Fallback { path, error: error.into() },
            }),
            #[cfg(feature = "aws")]
            Reports::S3(s3) => match s3.create(name, contents) {
                Ok(url) => Ok(Saved::InPlace(url)),
                Err(error) => match fallbacks.iter().find_map(|f| record::write_atomic(f, name, contents).ok()) {
                    Some(path) => Ok(Saved::Fallback { path, error }),
                    None => Err(error),
                },
            },
        }
    }

    /// Writes `contents` as `name` (a summary, replaced when it exists).
    pub fn put(&self, name: &str, contents: &str) -> Result<PathBuf, StoreError> {
        match self {
            Reports::Dir(dir) => Ok(record::write_atomic(dir, name, contents)?),
            #[cfg(feature = "aws")]
            Reports::S3(s3) => s3.put(&s3.key(name), contents),
        }
    }

    /// Writes `contents` at `path`, beside a record this store wrote: in the S3 prefix when the
    /// record is there, else in the record's folder (also when the record fell back to one).
    pub fn put_beside(&self, path: &Path, contents: &str) -> Result<PathBuf, StoreError> {
        #[cfg(feature = "aws")]
        if let Reports::S3(s3) = self {
            if let Some(key) = s3.key_of(path) {
                return s3.put(&key, contents);
            }
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("report");
        Ok(record::write_atomic(path.parent().unwrap_or(Path::new(".")), name, contents)?)
    }

    /// Every record of the location, and the files that could not be read as records.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        Ok(Loaded::parse(self.texts()?))
    }

    /// Every result's integrity ([`Integrity`]).
    pub fn verify(&self) -> Result<Vec<(PathBuf, Integrity)>, StoreError> {
        Ok(self.texts()?.map(|(path, text)| (path, Integrity::of(text))).collect())
    }

    /// The history of the drill `of` ([`record::load_history`]) at this location.
    pub fn history(&self, of: &DrillRecord, exclude: &[PathBuf], current: &[&DrillRecord]) -> History {
        let loaded = self.load().map_err(|e| {
            let error = match e {
                StoreError::ReadDir { source, .. } => source,
                e => std::io::Error::other(e),
            };
            Skipped { path: self.location().to_string().into(), error: LoadError::Read(error) }
        });
        record::history_in(loaded, of, exclude, current)
    }

    /// The result files (by [`record::is_result`]), sorted, each with its text or why it could
    /// not be read.
    fn texts(&self) -> Result<impl Iterator<Item = (PathBuf, std::io::Result<String>)> + '_, StoreError> {
        let results = match self {
            Reports::Dir(dir) => {
                record::result_files(dir).map_err(|source| StoreError::ReadDir { dir: dir.clone(), source })?
            }
            // S3 lists keys in order.
            #[cfg(feature = "aws")]
            Reports::S3(s3) => s3.list()?,
        };
        Ok(results.into_iter().map(move |path| {
            let text = match self {
                Reports::Dir(_) => std::fs::read_to_string(&path),
                #[cfg(feature = "aws")]
                Reports::S3(s3) => s3.read(&path),
            };
            (path, text)
        }))
    }
}

#[cfg(feature = "aws")]
mod s3 {
    //! An S3 prefix as a store of records, through the AWS SDK on a runtime of its own (the
    //! commands that use it are not async).

    use std::path::{Path, PathBuf};

    use aws_sdk_s3::primitives::ByteStream;

    use super::{ReportsLocation, StoreError};

    /// An S3 prefix, its client, and the runtime its requests run on.
    pub struct S3Reports {
        bucket: String,
        prefix: String,
        client: aws_sdk_s3::Client,
        runtime: tokio::runtime::Runtime,
    }

    /// An SDK error, boxed as [`StoreError::S3`]'s source.
    fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(e)
    }

    impl S3Reports {
        /// The client of the standard chain, on firedrill's HTTP client; path-style addressing
        /// when an endpoint URL is configured (an emulator has no per-bucket host names).
        pub fn open(bucket: &str, prefix: &str, loader: aws_config::ConfigLoader) -> Result<Self, StoreError> {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(StoreError::Runtime)?;
            // Retries stay on here: a record is written once, after the drill, and must land.
            let config = runtime.block_on(loader.http_client(crate::probe::aws_http_client(None)).load());
            Ok(S3Reports {
                bucket: bucket.into(),
                prefix: prefix.into(),
                client: crate::env::aws::connect::s3(&config),
                runtime,
            })
        }

        pub fn location(&self) -> ReportsLocation {
            ReportsLocation::S3 { bucket: self.bucket.clone(), prefix: self.prefix.clone() }
        }

        /// The key of `name` under the prefix.
        pub fn key(&self, name: &str) -> String {
            if self.prefix.is_empty() {
                name.into()
            } else {
                format!("{}/{name}", self.prefix)
            }
        }

        /// The URL that names `key` where a file's path would be.
        fn url(&self, key: &str) -> PathBuf {
            format!("s3://{}/{key}", self.bucket).into()
        }

        /// The key `path` names, when it is an object of this bucket.
        pub fn key_of(&self, path: &Path) -> Option<String> {
            path.to_str()?.strip_prefix(&format!("s3://{}/", self.bucket)).map(str::to_string)
        }

        /// Puts a probe object and deletes it, as a record and its removal would be.
        pub fn check_writable(&self) -> Result<(), StoreError> {
            let key = self.key(&format!(".write-check-{}", std::process::id()));
            self.put(&key, "")?;
            self.runtime.block_on(self.client.delete_object().bucket(&self.bucket).key(&key).send()).map_err(|e| {
                StoreError::S3 { action: "delete", url: self.url(&key).display().to_string(), source: boxed(e) }
            })?;
            Ok(())
        }

        /// Writes a record's object, only if none of its name exists (`If-None-Match: *`,
        /// which S3 and moto both honour): one PutObject is atomic, so a listing shows the
        /// whole record or none of it.
        pub fn create(&self, name: &str, contents: &str) -> Result<PathBuf, StoreError> {
            self.write(&self.key(name), contents, true)
        }

        /// Writes an object, replacing one of the same key.
        pub fn put(&self, key: &str, contents: &str) -> Result<PathBuf, StoreError> {
            self.write(key, contents, false)
        }

        fn write(&self, key: &str, contents: &str, only_new: bool) -> Result<PathBuf, StoreError> {
            let url = self.url(key);
            let content_type = match Path::new(key).extension().and_then(|e| e.to_str()) {
                Some("json") => "application/json",
                Some("html") => "text/html; charset=utf-8",
                Some("md") => "text/markdown; charset=utf-8",
                Some("xml") => "application/xml",
                _ => "application/octet-stream",
            };
            let mut put = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .body(ByteStream::from(contents.as_bytes().to_vec()));
            if only_new {
                put = put.if_none_match("*");
            }
            match self.runtime.block_on(put.send()) {
                Ok(_) => Ok(url),
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                    Err(StoreError::Exists { url: url.display().to_string() })
                }
                Err(e) => Err(StoreError::S3 { action: "write", url: url.display().to_string(), source: boxed(e) }),
            }
        }

        /// The result objects directly under the prefix (as a folder's files: not in its
        /// sub-prefixes), by URL.
        pub fn list(&self) -> Result<Vec<PathBuf>, StoreError> {
            let under = self.key("");
            let mut urls = Vec::new();
            let mut token = None;
            loop {
                let page = self
                    .runtime
                    .block_on(
                        self.client
                            .list_objects_v2()
                            .bucket(&self.bucket)
                            .prefix(&under)
                            .delimiter("/")
                            .set_continuation_token(token)
                            .send(),
                    )
                    .map_err(|e| StoreError::S3 {
                        action: "list",
                        url: self.location().to_string(),
                        source: boxed(e),
                    })?;
                for key in page.contents().iter().filter_map(|o| o.key()) {
                    let name = key.strip_prefix(&under).unwrap_or(key);
                    if crate::record::is_result(name) {
                        urls.push(self.url(key));
                    }
                }
                token = page.next_continuation_token().map(str::to_string);
                if token.is_none() {
                    return Ok(urls);
                }
            }
        }

        /// The text of the object `url` names.
        pub fn read(&self, url: &Path) -> std::io::Result<String> {
            let key = self.key_of(url).ok_or_else(|| std::io::Error::other("not an object of this bucket"))?;
            let bytes = self.runtime.block_on(async {
                let object = self
                    .client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(std::io::Error::other)?;
                object.body.collect().await.map(|b| b.into_bytes()).map_err(std::io::Error::other)
            })?;
            String::from_utf8(bytes.to_vec()).map_err(std::io::Error::other)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_is_a_folder_or_an_s3_prefix_and_a_bad_url_is_refused_by_name() {
        assert_eq!("reports".parse::<ReportsLocation>().unwrap(), ReportsLocation::Dir("reports".into()));
        let team = "s3://drills.example-org/team-a/".parse::<ReportsLocation>().unwrap();
        assert_eq!(team, ReportsLocation::S3 { bucket: "drills.example-org".into(), prefix: "team-a".into() });
        assert_eq!(team.to_string(), "s3://drills.example-org/team-a");
        let whole = "s3://drills".parse::<ReportsLocation>().unwrap();
        assert_eq!(whole, ReportsLocation::S3 { bucket: "drills".into(), prefix: String::new() });
        assert_eq!(whole.to_string(), "s3://drills");
        for bad in ["s3://", "s3:///team-a", "s3://Drills/team-a", "s3://ab/x", "s3://-drills/x"] {
            let err = bad.parse::<ReportsLocation>().unwrap_err();
            assert!(matches!(err, StoreError::S3Url { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("expected s3://BUCKET/PREFIX"), "{err}");
        }
        let err = "gs://drills/team-a".parse::<ReportsLocation>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`gs://drills/team-a`: records are kept in a folder or at s3://BUCKET/PREFIX, not at a gs:// URL"
        );
    }

    #[cfg(not(feature = "aws"))]
    #[test]
    fn an_s3_location_in_a_build_without_aws_is_refused_by_name() {
        let location = "s3://drills/team-a".parse::<ReportsLocation>().unwrap();
        let Err(err) = Reports::open(&location) else { panic!("opened") };
        assert_eq!(
            err.to_string(),
            "failed to use s3://drills/team-a: this firedrill was built without the aws feature"
        );
    }
}
