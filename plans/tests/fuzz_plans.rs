//! Property tests over the plan loader and validator (`plans::parse`): whatever the
//! text, parsing never panics, and a refusal always names at least one problem, each
//! with a line and column inside the file and a message.
//!
//! Inputs are real plans (`plans/examples/*.yaml` plus the plans the CLI tests use)
//! mutated the way hands and tools break YAML — byte flips, truncation, deleted,
//! duplicated and swapped lines, YAML syntax dropped in — and random YAML documents.
//! The number of cases prints under `--nocapture`; `RELOCATE_FUZZ_CASES=100000 cargo
//! test -p plans --test fuzz_plans -- --nocapture` runs a longer campaign.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use plans::PlanError;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// A valid plan like the orchestrator's CLI tests write (stores, a gate, two stages).
const CLI_PLAN: &str = r#"apiVersion: relocate/v1
kind: MigrationPlan
name: fuzz
regions:
  moscow: { jurisdiction: RU }
  zurich: { jurisdiction: CH }
source: moscow
target: zurich
residency:
  allowedTargetJurisdictions: [CH]
stores:
  src: { region: moscow, url: "file://./src/" }
  dst:
    region: zurich
    url: "s3://bucket/archive/"
    options:
      endpoint: "http://127.0.0.1:3900"
      allow_http: "true"
      access_key_id: "${env:ZRH_KEY_ID}"
      secret_access_key: "${env:ZRH_SECRET}"
clusters:
  msk: { region: moscow, context: msk }
  zrh: { region: zurich, context: zrh }
workloads:
  data:
    objects: { from: src, to: dst, bandwidth: 12MiB/s, concurrency: 8, include: ["**"], exclude: ["**/*.tmp"], checksum: blake3 }
  app:
    kubernetes:
      from: msk
      to: zrh
      namespace: analysis
      selector: { app: analyzer }
      transform:
        images: { "registry.msk.example/": "registry.zrh.example/" }
        storageClasses: { standard: zrh-ssd }
approvers:
  auditor:
    publicKey: "ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    hook: { command: ["./hook.sh"] }
stages:
  - name: seed
    steps: [ { copy: data }, { verify: data } ]
    signoff: [auditor]
  - name: cutover
    steps:
      - freeze: app
      - run: ["sh", "-c", "printf changed > src/x"]
      - copy: data
      - verify: data
      - deploy: app
    signoff: [auditor]
"#;

/// Fragments of YAML syntax (and of things that are not YAML) dropped into plans.
const FRAGMENTS: &[&str] = &[
    "- ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "<<: *a",
    "!!binary ",
    "!tag ",
    "? ",
    "|",
    ">-",
    "\t",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "\"",
    "'",
    "#",
    "\\",
    "\0",
    "\u{feff}",
    "ü",
    "🦀",
    "\r\n",
    "~",
    "null",
    "true",
    "0x1F",
    "1e999",
    "-.inf",
    ".nan",
    "${env:X}",
    "${file:/etc/passwd}",
    "ed25519:",
    "s3://",
    "file://../../",
    "999999999999999999999",
    "  ",
    "\n\n",
    "&x [*x, *x]",
    "copy",
    "verify",
    "signoff",
    "stages",
    "name",
];

/// The corpus: the example plans shipped with the crate, plus [`CLI_PLAN`].
fn corpus() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut plans: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .collect()
        })
        .unwrap_or_default();
    plans.push(CLI_PLAN.to_owned());
    plans
}

/// One way to break a plan. Positions are taken modulo the text's length.
#[derive(Debug, Clone)]
enum Mutation {
    FlipByte { at: usize, xor: u8 },
    Truncate { at: usize },
    DeleteLine { at: usize },
    DuplicateLine { at: usize },
    SwapLines { a: usize, b: usize },
    Insert { at: usize, fragment: usize },
    ReplaceValue { at: usize, with: String },
    Reindent { at: usize, spaces: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, xor)| Mutation::FlipByte { at, xor }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        any::<usize>().prop_map(|at| Mutation::DeleteLine { at }),
        any::<usize>().prop_map(|at| Mutation::DuplicateLine { at }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        (any::<usize>(), 0..FRAGMENTS.len())
            .prop_map(|(at, fragment)| Mutation::Insert { at, fragment }),
        (any::<usize>(), "\\PC{0,24}").prop_map(|(at, with)| Mutation::ReplaceValue { at, with }),
        (any::<usize>(), 0..9usize).prop_map(|(at, spaces)| Mutation::Reindent { at, spaces }),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let n = lines.len().max(1);
    match *m {
        Mutation::FlipByte { at, xor } => {
            let mut bytes = text.as_bytes().to_vec();
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] ^= xor;
            }
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        Mutation::Truncate { at } => {
            let bytes = text.as_bytes();
            let cut = if bytes.is_empty() {
                0
            } else {
                at % bytes.len()
            };
            return String::from_utf8_lossy(&bytes[..cut]).into_owned();
        }
        Mutation::DeleteLine { at } => {
            if !lines.is_empty() {
                lines.remove(at % n);
            }
        }
        Mutation::DuplicateLine { at } => {
            if !lines.is_empty() {
                let line = lines[at % n].clone();
                lines.insert(at % n, line);
            }
        }
        Mutation::SwapLines { a, b } => {
            if !lines.is_empty() {
                lines.swap(a % n, b % n);
            }
        }
        Mutation::Insert { at, fragment } => {
            let mut out = text.to_owned();
            let mut i = if text.is_empty() { 0 } else { at % text.len() };
            while !out.is_char_boundary(i) {
                i -= 1;
            }
            out.insert_str(i, FRAGMENTS[fragment]);
            return out;
        }
        Mutation::ReplaceValue { at, ref with } => {
            if !lines.is_empty() {
                let line = &mut lines[at % n];
                if let Some(colon) = line.find(": ") {
                    line.replace_range(colon + 2.., with);
                } else {
                    line.push_str(with);
                }
            }
        }
        Mutation::Reindent { at, spaces } => {
            if !lines.is_empty() {
                let line = &mut lines[at % n];
                let trimmed = line.trim_start().to_owned();
                *line = format!("{}{trimmed}", " ".repeat(spaces));
            }
        }
    }
    lines.join("\n")
}

/// A random YAML value: scalars, sequences and maps nested a few levels.
fn yaml_value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_-]{0,12}",
        any::<i64>().prop_map(|n| n.to_string()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        "\"\\PC{0,16}\"".prop_map(|s| s.replace('\\', "")),
        prop::sample::select(FRAGMENTS.to_vec()).prop_map(str::to_owned),
    ];
    scalar.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-zA-Z]{1,10}", inner), 0..6).prop_map(|kv| format!(
                "{{{}}}",
                kv.into_iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ]
    })
}

/// A random plan-shaped document: the plan's top-level keys with random values.
fn random_document() -> impl Strategy<Value = String> {
    let keys = prop::sample::subsequence(
        vec![
            "apiVersion",
            "kind",
            "name",
            "regions",
            "source",
            "target",
            "residency",
            "stores",
            "clusters",
            "workloads",
            "approvers",
            "stages",
            "extra",
        ],
        0..13,
    );
    (keys, prop::collection::vec(yaml_value(), 13)).prop_map(|(keys, values)| {
        keys.iter()
            .zip(values)
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect()
    })
}

/// Inputs parsed and inputs refused by one test.
#[derive(Default)]
struct Tally {
    cases: AtomicU64,
    refused: AtomicU64,
}

impl Tally {
    fn report(&self, what: &str) {
        let (cases, refused) = (
            self.cases.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        );
        eprintln!(
            "{what}: {cases} inputs parsed, {refused} refused with positioned diagnostics, {} accepted",
            cases - refused
        );
    }
}

/// Parse and check the refusal's diagnostics; a panic inside is caught by proptest
/// and reported with the (shrunk) input.
fn check(text: &str, tally: &Tally) -> Result<(), TestCaseError> {
    tally.cases.fetch_add(1, Ordering::Relaxed);
    let lines = text.split('\n').count();
    match plans::parse(text, Path::new("fuzz.yaml")) {
        Ok(plan) => {
            prop_assert!(!plan.name().is_empty());
        }
        Err(PlanError::Invalid(diags)) => {
            tally.refused.fetch_add(1, Ordering::Relaxed);
            prop_assert!(!diags.is_empty(), "a refusal with no diagnostic");
            for d in &diags {
                prop_assert!(
                    d.line >= 1 && d.column >= 1,
                    "unpositioned diagnostic {d:?}"
                );
                prop_assert!(
                    d.line <= lines + 1,
                    "diagnostic past the end of the file ({lines} lines): {d:?}"
                );
                prop_assert!(
                    !d.message.trim().is_empty(),
                    "diagnostic without a message: {d:?}"
                );
            }
            let rendered = PlanError::Invalid(diags).to_string();
            prop_assert!(rendered.starts_with("fuzz.yaml:"), "{rendered}");
        }
        Err(other) => prop_assert!(false, "parse returned a non-plan error: {other}"),
    }
    Ok(())
}

fn runner(default_cases: u32) -> TestRunner {
    let cases = std::env::var("RELOCATE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn the_corpus_is_valid_to_start_from() {
    let corpus = corpus();
    assert!(corpus.len() >= 2, "examples found: {}", corpus.len() - 1);
    let tally = Tally::default();
    for text in &corpus {
        check(text, &tally).expect("checks hold");
    }
    plans::parse(CLI_PLAN, Path::new("fuzz.yaml")).expect("the CLI plan is valid");
}

#[test]
fn mutated_real_plans_never_panic_and_refusals_are_positioned() {
    let corpus = corpus();
    let tally = Tally::default();
    let strategy = (0..corpus.len(), prop::collection::vec(mutation(), 1..5));
    runner(3000)
        .run(&strategy, |(which, mutations)| {
            let text = mutations
                .iter()
                .fold(corpus[which].clone(), |t, m| apply(&t, m));
            check(&text, &tally)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    tally.report("mutated plans");
}

#[test]
fn random_yaml_never_panics_and_refusals_are_positioned() {
    let documents = Tally::default();
    runner(1500)
        .run(&random_document(), |text| check(&text, &documents))
        .unwrap_or_else(|e| panic!("{e}"));
    documents.report("random plan-shaped documents");
    let texts = Tally::default();
    runner(1500)
        .run(&"\\PC{0,400}", |text| check(&text, &texts))
        .unwrap_or_else(|e| panic!("{e}"));
    texts.report("random text");
}

#[test]
fn pathological_documents_are_refused_without_panic() {
    let deep_seq = "[".repeat(5000);
    let deep_map = "{a: ".repeat(5000);
    let aliases = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    let long_line = format!("name: {}\n", "x".repeat(1 << 20));
    let many_keys: String = (0..20_000).map(|i| format!("k{i}: v\n")).collect();
    for (what, text) in [
        ("empty", String::new()),
        ("bom only", "\u{feff}".to_owned()),
        ("nul", "\0".to_owned()),
        ("deep sequence", deep_seq),
        ("deep map", deep_map),
        ("alias bomb", aliases.to_owned()),
        ("1 MiB line", long_line),
        ("20k keys", many_keys),
        ("two documents", format!("{CLI_PLAN}---\n{CLI_PLAN}")),
        ("crlf", CLI_PLAN.replace('\n', "\r\n")),
    ] {
        let start = std::time::Instant::now();
        let result = std::panic::catch_unwind(|| check(&text, &Tally::default()));
        assert!(result.is_ok(), "{what}: parse panicked");
        assert!(
            result.as_ref().is_ok_and(Result::is_ok),
            "{what}: {result:?}"
        );
        eprintln!("{what}: {:?}", start.elapsed());
    }
}
