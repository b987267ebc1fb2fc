//! Rollouts in the fake API server progress as a controller makes them: after an apply
//! that changes a workload's spec, the first answers show the new generation unobserved,
//! the next ones a partly available rollout, and only then is it done.

use serde_json::{Value, json};

use super::apiserver::ApiServer;

/// A rollout of the stored object `key` starts now; returns it as the server answers.
pub fn begin(server: &ApiServer, key: &(String, String)) -> Value {
    let polls = server.start_rollout(key.clone());
    let mut objects = server.objects().lock().expect("lock");
    let Some(object) = objects.get_mut(key) else {
        return Value::Null;
    };
    object["status"] = if polls == 0 {
        settled(object)
    } else {
        unobserved(object)
    };
    object.clone()
}

/// One poll of `collection`/`name`: if a rollout is in progress, move it one step, store
/// and return the object as it now is.
pub fn advance(server: &ApiServer, collection: &str, name: &str) -> Option<Value> {
    let key = (collection.to_owned(), name.to_owned());
    let (left, total) = server.tick(&key)?;
    let mut objects = server.objects().lock().expect("lock");
    let object = objects.get_mut(&key)?;
    let step = total - left;
    object["status"] = if left == 0 {
        settled(object)
    } else if step <= 1 {
        unobserved(object)
    } else {
        partial(object, step, total)
    };
    Some(object.clone())
}

fn generation(object: &Value) -> i64 {
    object["metadata"]["generation"].as_i64().unwrap_or(1)
}

fn replicas(object: &Value) -> i64 {
    object["spec"]["replicas"].as_i64().unwrap_or(1)
}

fn unobserved(object: &Value) -> Value {
    let mut status = object.get("status").cloned().unwrap_or(json!({}));
    status["observedGeneration"] = json!(generation(object) - 1);
    status
}

fn partial(object: &Value, step: i64, total: i64) -> Value {
    let (g, r) = (generation(object), replicas(object));
    let up = r * (step - 1) / total;
    match object["kind"].as_str() {
        Some("DaemonSet") => json!({"observedGeneration": g, "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3, "updatedNumberScheduled": 3, "numberReady": 3,
            "numberAvailable": 3 * (step - 1) / total}),
        Some("Job") => json!({"active": 1, "startTime": "2026-11-30T09:00:00Z"}),
        _ => json!({"observedGeneration": g, "replicas": r, "updatedReplicas": r,
            "readyReplicas": up, "availableReplicas": up, "unavailableReplicas": r - up,
            "currentRevision": format!("rev-{}", g - 1), "updateRevision": format!("rev-{g}"),
            "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                            "message": format!("ReplicaSet \"{}\" is progressing.", object["metadata"]["name"].as_str().unwrap_or_default())}]}),
    }
}

fn settled(object: &Value) -> Value {
    let (g, r) = (generation(object), replicas(object));
    match object["kind"].as_str() {
        Some("DaemonSet") => json!({"observedGeneration": g, "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3, "updatedNumberScheduled": 3, "numberReady": 3,
            "numberAvailable": 3}),
        Some("Job") => {
            let done = object["spec"]["completions"].as_i64().unwrap_or(1);
            json!({"succeeded": done, "startTime": "2026-11-30T09:00:00Z",
                   "completionTime": "2026-11-30T09:01:00Z",
                   "conditions": [{"type": "Complete", "status": "True"}]})
        }
        _ => json!({"observedGeneration": g, "replicas": r, "updatedReplicas": r,
            "readyReplicas": r, "availableReplicas": r,
            "currentRevision": format!("rev-{g}"), "updateRevision": format!("rev-{g}"),
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                           {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}),
    }
}
