//! Before a worker Job is made: the namespace, the credentials Secret and the service
//! account must exist, or the pods would sit in `CreateContainerConfigError` (a missing
//! Secret) or never be created (a missing service account) while the coordinator waits.
//! Only metadata is read: the Secret's values never leave the cluster.

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::Api;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use super::job::namespace_missing;
use crate::kube::{KubeError, ResourceId};

/// Check that `namespace`, and the Secret and service account when named, exist.
pub async fn check_worker_prerequisites(
    client: Client,
    namespace: &str,
    secret_name: Option<&str>,
    service_account: Option<&str>,
) -> Result<(), KubeError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if !exists(&namespaces, "Namespace", "", namespace).await? {
        return Err(namespace_missing(namespace));
    }
    if let Some(secret) = secret_name {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        if !exists(&secrets, "Secret", namespace, secret).await? {
            return Err(KubeError::MissingPrerequisite {
                kind: "secret".into(),
                name: secret.into(),
                namespace: Some(namespace.into()),
                hint: format!(
                    "create it with the store credentials (kubectl create secret generic {secret} -n {namespace} --from-literal=AWS_ACCESS_KEY_ID=… ), or name another in `credentials.secretName`"
                ),
            });
        }
    }
    if let Some(account) = service_account {
        let accounts: Api<ServiceAccount> = Api::namespaced(client, namespace);
        if !exists(&accounts, "ServiceAccount", namespace, account).await? {
            return Err(KubeError::MissingPrerequisite {
                kind: "service account".into(),
                name: account.into(),
                namespace: Some(namespace.into()),
                hint: format!(
                    "create it (kubectl create serviceaccount {account} -n {namespace}), or name another in `serviceAccountName`"
                ),
            });
        }
    }
    Ok(())
}

async fn exists<K>(api: &Api<K>, kind: &str, namespace: &str, name: &str) -> Result<bool, KubeError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let id = ResourceId {
        api_version: "v1".into(),
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    };
    match api.get_metadata_opt(name).await {
        Ok(found) => Ok(found.is_some()),
        Err(e) => match KubeError::from_api(&id, e) {
            KubeError::NamespaceNotFound { namespace, .. } => Err(namespace_missing(&namespace)),
            other => Err(other),
        },
    }
}
