//! Where a data store lives: a local directory, or an S3-compatible bucket
//! and prefix (`s3://bucket/prefix`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A data store's place, as `--data` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataLocation {
    /// A directory on this machine (created on first write).
    Local(PathBuf),
    /// A bucket of an S3-compatible store; credentials, region, endpoint
    /// (`AWS_ENDPOINT_URL`), `AWS_ALLOW_HTTP` and server-side encryption
    /// (`AWS_SERVER_SIDE_ENCRYPTION=aws:kms`, `AWS_SSE_KMS_KEY_ID`) come from
    /// the usual AWS environment.
    S3 { bucket: String, prefix: String },
}

const S3_SCHEME: &str = "s3://";

impl FromStr for DataLocation {
    type Err = String;

    fn from_str(text: &str) -> Result<DataLocation, String> {
        let Some(rest) = text.strip_prefix(S3_SCHEME) else {
            if text.contains("://") {
                return Err(format!(
                    "{text}: give a directory or s3://bucket/prefix (no other scheme is served)"
                ));
            }
            return Ok(DataLocation::Local(PathBuf::from(text)));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(format!(
                "{text}: a bucket name has 3-63 characters of a-z, 0-9, '-' and '.'"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..") {
            return Err(format!("{text}: the prefix may not hold '.' or '..'"));
        }
        Ok(DataLocation::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

impl fmt::Display for DataLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataLocation::Local(dir) => write!(f, "{}", dir.display()),
            DataLocation::S3 { bucket, prefix } if prefix.is_empty() => {
                write!(f, "{S3_SCHEME}{bucket}")
            }
            DataLocation::S3 { bucket, prefix } => write!(f, "{S3_SCHEME}{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_buckets_are_told_apart() {
        assert_eq!(
            "enclave-demo/data".parse(),
            Ok(DataLocation::Local(PathBuf::from("enclave-demo/data")))
        );
        let s3: DataLocation = "s3://ndb-releases/prod/".parse().unwrap();
        assert_eq!(
            s3,
            DataLocation::S3 {
                bucket: "ndb-releases".into(),
                prefix: "prod".into()
            }
        );
        assert_eq!(s3.to_string(), "s3://ndb-releases/prod");
        assert_eq!(
            "s3://ndb-releases"
                .parse::<DataLocation>()
                .unwrap()
                .to_string(),
            "s3://ndb-releases"
        );
    }

    #[test]
    fn bad_locations_are_refused_by_name() {
        for bad in [
            "s3://",
            "s3://UPPER/x",
            "s3://a/x",
            "gs://bucket/x",
            "s3://bucket/../x",
        ] {
            assert!(bad.parse::<DataLocation>().is_err(), "{bad}");
        }
    }
}
