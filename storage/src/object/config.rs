//! Object-store settings: where the S3 endpoint is, which region and credentials, path style,
//! and how hard to retry. Read from the environment the platform already sets, overridable
//! by CLI flags ([`set_overrides`]).
//!
//! | setting | first of |
//! |---|---|
//! | endpoint | flag, `OBJECT_STORE_ENDPOINT`, `AWS_ENDPOINT_URL` (none: AWS itself) |
//! | region | flag, `OBJECT_STORE_REGION`, `AWS_REGION`, `AWS_DEFAULT_REGION`, `us-east-1` |
//! | credentials | `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) |
//! | path style | flag, `OBJECT_STORE_PATH_STYLE` (`true`/`false`); default on with an endpoint |
//! | retries | `OBJECT_STORE_MAX_RETRIES` (15), `OBJECT_STORE_RETRY_TIMEOUT_SECS` (120) |
//!
//! Rules: an `http://` endpoint allows plain HTTP (a local MinIO or test server). With an
//! endpoint and no keys, requests go unsigned; the instance-metadata service is never asked
//! when an endpoint is given (it only exists on cloud VMs and hangs elsewhere).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, AwsCredential};
use object_store::{BackoffConfig, ClientOptions, RetryConfig, StaticCredentialProvider};

use crate::error::{Result, StorageError};

/// Settings given on the command line; `None` falls back to the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: Option<bool>,
}

static OVERRIDES: Mutex<Option<Overrides>> = Mutex::new(None);

/// Install CLI overrides (before the first object-store access; clients already built for a
/// bucket are dropped so the new settings apply).
pub fn set_overrides(o: Overrides) {
    *OVERRIDES.lock().unwrap_or_else(|p| p.into_inner()) = Some(o);
    super::remote::forget_clients();
}

/// The resolved settings for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub path_style: bool,
    pub max_retries: usize,
    pub retry_timeout: Duration,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(StorageError::ObjectStoreConfig {
            url: String::new(),
            message: format!("{name}={v:?} is not a boolean"),
        }),
    }
}

fn parse_number(name: &str, v: &str) -> Result<u64> {
    v.trim()
        .parse()
        .map_err(|_| StorageError::ObjectStoreConfig {
            url: String::new(),
            message: format!("{name}={v:?} is not a whole number"),
        })
}

impl S3Settings {
    /// Resolve from overrides, then the environment, then defaults.
    pub fn resolve() -> Result<Self> {
        let o = OVERRIDES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        let endpoint = o
            .endpoint
            .or_else(|| env("OBJECT_STORE_ENDPOINT"))
            .or_else(|| env("AWS_ENDPOINT_URL"));
        let region = o
            .region
            .or_else(|| env("OBJECT_STORE_REGION"))
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string());
        let path_style = match (o.path_style, env("OBJECT_STORE_PATH_STYLE")) {
            (Some(b), _) => b,
            (None, Some(v)) => parse_bool("OBJECT_STORE_PATH_STYLE", &v)?,
            (None, None) => endpoint.is_some(),
        };
        let max_retries = match env("OBJECT_STORE_MAX_RETRIES") {
            Some(v) => parse_number("OBJECT_STORE_MAX_RETRIES", &v)? as usize,
            None => 15,
        };
        let retry_timeout = match env("OBJECT_STORE_RETRY_TIMEOUT_SECS") {
            Some(v) => Duration::from_secs(parse_number("OBJECT_STORE_RETRY_TIMEOUT_SECS", &v)?),
            None => Duration::from_secs(120),
        };
        Ok(S3Settings {
            endpoint,
            region,
            access_key_id: env("AWS_ACCESS_KEY_ID"),
            secret_access_key: env("AWS_SECRET_ACCESS_KEY"),
            session_token: env("AWS_SESSION_TOKEN"),
            path_style,
            max_retries,
            retry_timeout,
        })
    }

    /// Build the client for `bucket`.
    pub fn build(&self, bucket: &str) -> Result<AmazonS3> {
        let url = format!("s3://{bucket}");
        let config_error = |message: String| StorageError::ObjectStoreConfig {
            url: url.clone(),
            message,
        };
        // Transient failures (timeouts, 5xx, 429, refused connections) are retried by the
        // client with exponential backoff; 4xx other than 408/429 fail at once.
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(10),
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        };
        let allow_http = self
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let client = ClientOptions::new()
            .with_allow_http(allow_http)
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(60));
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&self.region)
            .with_retry(retry)
            .with_client_options(client)
            .with_virtual_hosted_style_request(!self.path_style);
        if let Some(endpoint) = &self.endpoint {
            b = b.with_endpoint(endpoint);
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(k), Some(s)) => {
                b = b.with_credentials(Arc::new(StaticCredentialProvider::new(AwsCredential {
                    key_id: k.clone(),
                    secret_key: s.clone(),
                    token: self.session_token.clone(),
                })));
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(config_error(
                    "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither".into(),
                ))
            }
            (None, None) if self.endpoint.is_some() => {
                // Anonymous, and never the instance-metadata service.
                b = b.with_skip_signature(true).with_credentials(Arc::new(
                    StaticCredentialProvider::new(AwsCredential {
                        key_id: String::new(),
                        secret_key: String::new(),
                        token: None,
                    }),
                ));
            }
            (None, None) => {}
        }
        b.build().map_err(|e| config_error(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(endpoint: Option<&str>) -> S3Settings {
        S3Settings {
            endpoint: endpoint.map(str::to_string),
            region: "eu-west-1".into(),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            session_token: None,
            path_style: true,
            max_retries: 1,
            retry_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn local_endpoint_builds_and_half_credentials_fail() {
        assert!(settings(Some("http://127.0.0.1:9000")).build("b").is_ok());
        let mut half = settings(Some("http://127.0.0.1:9000"));
        half.secret_access_key = None;
        let e = half.build("b").unwrap_err();
        assert_eq!(e.code(), "OBJECT_STORE_CONFIG");
        let mut anonymous = settings(Some("http://127.0.0.1:9000"));
        anonymous.access_key_id = None;
        anonymous.secret_access_key = None;
        assert!(anonymous.build("b").is_ok());
    }

    #[test]
    fn booleans_and_numbers_are_checked() {
        assert!(parse_bool("X", "TRUE").unwrap());
        assert!(!parse_bool("X", "0").unwrap());
        assert_eq!(
            parse_bool("X", "maybe").unwrap_err().code(),
            "OBJECT_STORE_CONFIG"
        );
        assert_eq!(parse_number("X", " 12 ").unwrap(), 12);
        assert_eq!(
            parse_number("X", "-1").unwrap_err().code(),
            "OBJECT_STORE_CONFIG"
        );
    }
}
