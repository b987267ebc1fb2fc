//! The shipped example plans and the quickstart's demo material stay valid.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn example_plans() -> Vec<PathBuf> {
    let mut plans: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("examples dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    plans.sort();
    plans
}

#[test]
fn every_example_plan_validates() {
    let plans = example_plans();
    let names: Vec<String> = plans
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"quickstart.yaml".to_owned())
            && names.contains(&"zurich-relocation.yaml".to_owned()),
        "{names:?}"
    );
    for path in plans {
        if let Err(e) = plans::load(&path) {
            panic!("{} is invalid:\n{e}", path.display());
        }
    }
}

#[test]
fn zurich_relocation_moves_in_three_waves_with_a_threshold_gate() {
    let plan = plans::load(&examples_dir().join("zurich-relocation.yaml")).expect("valid");
    for wave in [
        "wave-1-europe",
        "wave-2-north-america",
        "wave-3-asia-pacific",
    ] {
        let stage = plan.stage(wave).expect("wave present");
        let kinds: Vec<&str> = stage.steps.iter().map(plans::Step::kind).collect();
        assert_eq!(kinds.first(), Some(&"freeze"), "{wave}: {kinds:?}");
        assert!(
            kinds.contains(&"deploy") && kinds.contains(&"verify"),
            "{wave}: {kinds:?}"
        );
    }
    let gate = plan
        .stage("final-verification")
        .and_then(|s| s.signoff.as_ref())
        .expect("gate");
    assert_eq!((gate.threshold(), gate.approvers().len()), (2, 3));
}

#[test]
fn quickstart_stores_resolve_beside_the_plan() {
    let plan = plans::load(&examples_dir().join("quickstart.yaml")).expect("valid");
    let src = plan
        .store_url("demo-src")
        .expect("demo-src")
        .to_file_path()
        .expect("file URL");
    assert_eq!(
        src.canonicalize().expect("demo source exists"),
        examples_dir()
            .join("demo/source")
            .canonicalize()
            .expect("exists")
    );
    let dst = plan
        .store_url("demo-dst")
        .expect("demo-dst")
        .to_file_path()
        .expect("file URL");
    assert!(dst.ends_with(".demo-target/zurich"), "{}", dst.display());
}

#[test]
fn demo_source_has_the_advertised_variety() {
    let root = examples_dir().join("demo/source");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path)
            } else {
                files.push(path)
            }
        }
    }
    let total: u64 = files
        .iter()
        .map(|f| f.metadata().expect("meta").len())
        .sum();
    assert_eq!(files.len(), 30);
    assert!(total < 200 * 1024, "{total} bytes");
    assert!(
        files.iter().any(|f| f.metadata().expect("meta").len() == 0),
        "an empty object"
    );
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().contains("Zürich 北京")),
        "a Unicode name with spaces"
    );
    assert!(
        files.iter().any(|f| f
            .strip_prefix(&root)
            .expect("under root")
            .components()
            .count()
            >= 4),
        "a nested key"
    );
}

#[test]
fn demo_key_pair_matches_the_pinned_public_key() {
    let dir = examples_dir();
    let secret = std::fs::read_to_string(dir.join("demo-auditor.key")).expect("key file");
    let seed = STANDARD
        .decode(
            secret
                .trim()
                .strip_prefix("ed25519-secret:")
                .expect("key prefix"),
        )
        .expect("base64 seed");
    let seed: [u8; 32] = seed.try_into().expect("32-byte seed");
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let pinned = format!("ed25519:{}", STANDARD.encode(public.as_bytes()));
    let pub_file = std::fs::read_to_string(dir.join("demo-auditor.pub")).expect("pub file");
    assert_eq!(pub_file.trim(), pinned);
    let plan = plans::load(&dir.join("quickstart.yaml")).expect("valid");
    assert_eq!(plan.plan().approvers["demo-auditor"].public_key, pinned);
}

#[cfg(unix)]
#[test]
fn demo_hook_is_executable() {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(examples_dir().join("demo-auditor-hook.sh"))
        .expect("hook")
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "mode {mode:o}");
}
