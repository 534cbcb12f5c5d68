//! Blobs as objects in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, R2…), through
//! the `object_store` crate (Apache Arrow's; it signs requests, retries with back-off
//! and speaks the conditional writes S3 gained in 2024).
//!
//! A blob is one object, `<prefix>/<hash>`, written with `If-None-Match: *`: when two
//! instances store the same bytes at once, one write wins and the other learns the blob
//! is already there, and a stored blob is never overwritten. An S3 PUT is durable when
//! it is answered, so, as for local files, the upload is acknowledged only after the
//! object is whole and its row committed.
//!
//! The services call the store from blocking code (inside `spawn_blocking`, jobs'
//! threads, tests), so this back end runs its requests on a small runtime of its own
//! and waits for each one; it never blocks the caller's runtime from inside a task.
//!
//! Credentials come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`), never from the URL, so they stay out of logs and
//! process lists. Against a server of your own (`endpoint=`) without a key, requests go
//! unsigned.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutPayload, RetryConfig,
};

use super::{BlobBackend, Put};
use crate::error::{Error, Result};

/// `s3://bucket[/prefix][?endpoint=URL&region=NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Keys start with this (no leading or trailing `/`); empty: the bucket's root.
    pub prefix: String,
    /// The server's URL (`http://127.0.0.1:8333`); `None`: AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl FromStr for S3Location {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::Setup(format!("--blobs {text:?}: {why}"));
        let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "s3" {
            return Err(bad("an S3 location starts with s3://"));
        }
        let bucket = url
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| bad("no bucket (s3://BUCKET/prefix)"))?
            .to_owned();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "credentials do not go in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ));
        }
        let mut location = S3Location {
            bucket,
            prefix: url.path().trim_matches('/').to_owned(),
            endpoint: None,
            region: None,
        };
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "endpoint" => {
                    url::Url::parse(&value)
                        .map_err(|e| bad(&format!("endpoint {value:?}: {e}")))?;
                    location.endpoint = Some(value.trim_end_matches('/').to_owned());
                }
                "region" => location.region = Some(value.into_owned()),
                other => {
                    return Err(bad(&format!(
                        "unknown setting {other:?} (endpoint and region are known)"
                    )));
                }
            }
        }
        Ok(location)
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        let mut separator = '?';
        if let Some(endpoint) = &self.endpoint {
            write!(f, "{separator}endpoint={endpoint}")?;
            separator = '&';
        }
        if let Some(region) = &self.region {
            write!(f, "{separator}region={region}")?;
        }
        Ok(())
    }
}

pub struct S3Blobs {
    location: S3Location,
    store: Arc<dyn ObjectStore>,
    /// Runs the requests; `None` only while being dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Blobs")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Drop for S3Blobs {
    fn drop(&mut self) {
        // The last handle may go inside an async task (a server stopping), where
        // dropping a runtime that waits for its threads would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl S3Blobs {
    /// Connects to the bucket and lists its prefix once, so a wrong endpoint, bucket or
    /// key is reported when `album serve` starts rather than at the first upload.
    pub fn connect(location: &S3Location) -> Result<Self> {
        let setup = |what: &str, e: &dyn fmt::Display| {
            Error::Setup(format!("blob store {location}: {what}: {e}"))
        };
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&location.bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 5,
                retry_timeout: Duration::from_secs(60),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(120)),
            );
        if let Some(endpoint) = &location.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                // servers of one's own answer at one host name, not per bucket
                .with_virtual_hosted_style_request(false)
                .with_region(location.region.as_deref().unwrap_or("us-east-1"));
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                builder = builder.with_skip_signature(true);
            }
        } else if let Some(region) = &location.region {
            builder = builder.with_region(region);
        }
        let store = builder.build().map_err(|e| setup("configuration", &e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("album-s3")
            .enable_all()
            .build()
            .map_err(|e| setup("starting its client", &e))?;
        let blobs = S3Blobs {
            location: location.clone(),
            store: Arc::new(store),
            runtime: Some(runtime),
        };
        let store = blobs.store.clone();
        let prefix = blobs.prefix_path();
        blobs
            .wait(async move { store.list_with_delimiter(prefix.as_ref()).await })
            .map_err(|e| {
                // Without a key, object_store asks the machine's metadata service (EC2,
                // ECS) for one: off AWS that fails with an address nobody recognises.
                let hint = if location.endpoint.is_none()
                    && std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
                {
                    " (no AWS_ACCESS_KEY_ID is set: set it and AWS_SECRET_ACCESS_KEY, or name \
                     a server of your own with ?endpoint=URL)"
                } else {
                    ""
                };
                setup(
                    &format!("the bucket cannot be listed (does it exist?){hint}"),
                    &e,
                )
            })?;
        Ok(blobs)
    }

    fn prefix_path(&self) -> Option<ObjectPath> {
        (!self.location.prefix.is_empty()).then(|| ObjectPath::from(self.location.prefix.as_str()))
    }

    fn key(&self, name: &str) -> ObjectPath {
        match self.prefix_path() {
            Some(prefix) => prefix.join(name),
            None => ObjectPath::from(name),
        }
    }

    /// Runs `request` on this store's runtime and waits for its answer. Safe from any
    /// thread: the caller only waits on a channel.
    fn wait<T: Send + 'static>(
        &self,
        request: impl Future<Output = object_store::Result<T>> + Send + 'static,
    ) -> std::result::Result<T, WaitError> {
        let runtime = self.runtime.as_ref().ok_or(WaitError::Stopped)?;
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = answer.send(request.await);
        });
        answered
            .recv()
            .map_err(|_| WaitError::Stopped)?
            .map_err(WaitError::Store)
    }

    fn failed(&self, action: &str, name: &str, e: WaitError) -> Error {
        Error::internal(
            "blob store",
            format!("cannot {action} {}: {e}", self.location(name)),
        )
    }
}

/// Why a request to the bucket got no answer.
#[derive(Debug)]
enum WaitError {
    Store(object_store::Error),
    /// The runtime stopped (the service is shutting down) before the answer came.
    Stopped,
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Store(e) => write!(f, "{e}"),
            WaitError::Stopped => write!(f, "the blob store's client stopped"),
        }
    }
}

impl BlobBackend for S3Blobs {
    fn put(&self, name: &str, bytes: &[u8]) -> Result<Put> {
        let (store, key) = (self.store.clone(), self.key(name));
        let payload = PutPayload::from(bytes.to_vec());
        match self.wait(async move { store.put_opts(&key, payload, PutMode::Create.into()).await })
        {
            Ok(_) => Ok(Put::Written),
            // Content-addressed: what is there under this name is these bytes.
            Err(WaitError::Store(object_store::Error::AlreadyExists { .. })) => {
                Ok(Put::AlreadyThere)
            }
            Err(e) => Err(self.failed("write", name, e)),
        }
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let (store, key) = (self.store.clone(), self.key(name));
        self.wait(async move { store.get(&key).await?.bytes().await })
            .map(|bytes| bytes.to_vec())
            .map_err(|e| self.failed("read", name, e))
    }

    fn contains(&self, name: &str) -> Result<bool> {
        let (store, key) = (self.store.clone(), self.key(name));
        match self.wait(async move { store.head(&key).await }) {
            Ok(_) => Ok(true),
            Err(WaitError::Store(object_store::Error::NotFound { .. })) => Ok(false),
            Err(e) => Err(self.failed("look up", name, e)),
        }
    }

    fn remove(&self, name: &str) -> Result<()> {
        let (store, key) = (self.store.clone(), self.key(name));
        // S3 answers a delete of a missing key with success.
        match self.wait(async move { store.delete(&key).await }) {
            Ok(()) | Err(WaitError::Store(object_store::Error::NotFound { .. })) => Ok(()),
            Err(e) => Err(self.failed("delete", name, e)),
        }
    }

    fn names(&self) -> Result<Vec<String>> {
        let store = self.store.clone();
        let prefix = self.prefix_path();
        let depth = prefix.as_ref().map_or(0, |p| p.parts().count());
        let listed = self
            .wait(async move {
                store
                    .list(prefix.as_ref())
                    .map_ok(|meta| meta.location)
                    .try_collect::<Vec<_>>()
                    .await
            })
            .map_err(|e| self.failed("list", "", e))?;
        Ok(listed
            .into_iter()
            // `<prefix>/<hash>` only: deeper keys are not this store's
            .filter(|key| key.parts().count() == depth + 1)
            .filter_map(|key| key.filename().map(str::to_owned))
            .filter(|name| super::is_hash(name))
            .collect())
    }

    fn leftovers(&self) -> Result<usize> {
        // A failed PUT leaves nothing behind (S3 stores whole objects only).
        Ok(0)
    }

    fn location(&self, name: &str) -> String {
        let S3Location { bucket, prefix, .. } = &self.location;
        match (prefix.is_empty(), name.is_empty()) {
            (true, _) => format!("s3://{bucket}/{name}"),
            (false, true) => format!("s3://{bucket}/{prefix}"),
            (false, false) => format!("s3://{bucket}/{prefix}/{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_url_names_bucket_prefix_endpoint_and_region() {
        let location: S3Location =
            "s3://photos/albums/one/?endpoint=http://127.0.0.1:8333/&region=eu-west-1"
                .parse()
                .unwrap();
        assert_eq!(
            location,
            S3Location {
                bucket: "photos".into(),
                prefix: "albums/one".into(),
                endpoint: Some("http://127.0.0.1:8333".into()),
                region: Some("eu-west-1".into()),
            }
        );
        assert_eq!(
            location.to_string(),
            "s3://photos/albums/one?endpoint=http://127.0.0.1:8333&region=eu-west-1"
        );
        let bare: S3Location = "s3://photos".parse().unwrap();
        assert_eq!((bare.prefix.as_str(), bare.endpoint), ("", None));
    }

    #[test]
    fn a_bad_s3_url_says_what_is_wrong() {
        for (url, says) in [
            ("s3:///prefix", "no bucket"),
            ("s3://key:secret@photos", "AWS_ACCESS_KEY_ID"),
            (
                "s3://photos?endpont=http://x",
                "unknown setting \"endpont\"",
            ),
            ("s3://photos?endpoint=not a url", "endpoint"),
        ] {
            let error = url.parse::<S3Location>().unwrap_err().to_string();
            assert!(error.contains(says), "{url}: {error}");
        }
    }
}
