//! Reaching a cluster named in the plan: its kubeconfig file and context, the pod's own
//! service account when relocate runs in-cluster, or kube's usual inference.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::KubeError;

/// Longest silence tolerated while reading an answer or sending a request.
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Build a client for `cluster`. A relative `kubeconfig` path is resolved against
/// `base_dir` (the plan's directory), so a plan and its kubeconfig can travel together.
pub async fn connect(cluster: &plans::Cluster, base_dir: &Path) -> Result<Client, KubeError> {
    let (what, mut config) = load_config(cluster, base_dir).await?;
    // kube sets no read timeout: a connection that drops silently would hang a call forever.
    config.read_timeout = Some(READ_TIMEOUT);
    tracing::debug!(cluster = %what, "connecting to Kubernetes");
    Client::try_from(config).map_err(|e| KubeError::Connect {
        what,
        message: e.to_string(),
    })
}

async fn load_config(
    cluster: &plans::Cluster,
    base_dir: &Path,
) -> Result<(String, Config), KubeError> {
    let options = KubeConfigOptions {
        context: cluster.context.clone(),
        ..KubeConfigOptions::default()
    };
    let context = cluster.context.as_deref().unwrap_or("<current context>");
    if cluster.in_cluster {
        let what = "in-cluster service account".to_owned();
        return match Config::incluster() {
            Ok(config) => Ok((what, config)),
            Err(e) => Err(KubeError::Connect {
                what,
                message: e.to_string(),
            }),
        };
    }
    if let Some(path) = &cluster.kubeconfig {
        let path = base_dir.join(path);
        let what = format!("kubeconfig {} context {context}", path.display());
        let kubeconfig = Kubeconfig::read_from(&path).map_err(|e| KubeError::Kubeconfig {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| KubeError::Connect {
                what: what.clone(),
                message: e.to_string(),
            })?;
        return Ok((what, config));
    }
    if cluster.context.is_some() {
        let what = format!("default kubeconfig context {context}");
        return match Config::from_kubeconfig(&options).await {
            Ok(config) => Ok((what, config)),
            Err(e) => Err(KubeError::Connect {
                what,
                message: e.to_string(),
            }),
        };
    }
    let what = "inferred configuration".to_owned();
    match Config::infer().await {
        Ok(config) => Ok((what, config)),
        Err(e) => Err(KubeError::Connect {
            what,
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = r#"apiVersion: v1
kind: Config
current-context: msk
clusters:
- name: msk
  cluster: { server: "https://10.0.0.1:6443", insecure-skip-tls-verify: true }
- name: zrh
  cluster: { server: "https://10.9.0.1:6443", insecure-skip-tls-verify: true }
contexts:
- name: msk-prod
  context: { cluster: msk, user: ops, namespace: analysis }
- name: zrh-prod
  context: { cluster: zrh, user: ops }
users:
- name: ops
  user: { token: "s3cr3t-token-value" }
"#;

    fn cluster(context: Option<&str>, kubeconfig: Option<&str>) -> plans::Cluster {
        plans::Cluster {
            region: "zurich".to_owned(),
            context: context.map(str::to_owned),
            kubeconfig: kubeconfig.map(str::to_owned),
            in_cluster: false,
        }
    }

    #[tokio::test]
    async fn relative_kubeconfig_and_context_select_the_cluster() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("kubeconfig"), KUBECONFIG).expect("write");
        let (what, config) =
            load_config(&cluster(Some("zrh-prod"), Some("kubeconfig")), dir.path())
                .await
                .expect("config loads");
        assert_eq!(config.cluster_url.to_string(), "https://10.9.0.1:6443/");
        assert!(what.contains("zrh-prod"));
        let (_, config) = load_config(&cluster(Some("msk-prod"), Some("kubeconfig")), dir.path())
            .await
            .expect("config loads");
        assert_eq!(config.default_namespace, "analysis");
    }

    #[tokio::test]
    async fn unknown_context_is_a_connect_error_without_the_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("kubeconfig"), KUBECONFIG).expect("write");
        let Err(err) = connect(&cluster(Some("nope"), Some("kubeconfig")), dir.path()).await else {
            panic!("unknown context accepted");
        };
        let text = format!("{err} {err:?}");
        assert!(matches!(err, KubeError::Connect { .. }), "{text}");
        assert!(text.contains("nope"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[tokio::test]
    async fn missing_kubeconfig_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Err(err) = connect(&cluster(None, Some("absent.yaml")), dir.path()).await else {
            panic!("missing kubeconfig accepted");
        };
        match err {
            KubeError::Kubeconfig { path, .. } => assert!(path.ends_with("absent.yaml")),
            other => panic!("unexpected {other}"),
        }
    }
}
