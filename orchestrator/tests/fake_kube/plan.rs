//! The plan the Kubernetes CLI tests run against two fake clusters: workload `analyzer`
//! (selector `app: analyzer`) moved from namespace `analysis` of cluster `msk` (context
//! `src`) to `analysis-zrh` of cluster `zrh` (context `dst`), both read from
//! `kubeconfig.yaml` (see [`super::kubeconfig`]), in one stage `cutover`. Each test adds
//! only the keys its finding is about, so the scaffolding is written once.

/// A cutover plan; every `&str` field is YAML lines (each ending in `\n`) spliced in
/// at the indentation its doc names, empty for none.
#[derive(Debug, Clone, Copy)]
pub struct CutoverPlan<'a> {
    /// The plan's `name`.
    pub name: &'a str,
    /// The steps of stage `cutover`, e.g. `{ freeze: analyzer }`.
    pub steps: &'a str,
    /// More keys of the workload's `kubernetes:` block (indented 6).
    pub workload: &'a str,
    /// More keys of its `transform:` (indented 8).
    pub transform: &'a str,
    /// Top-level keys before `stages:` (e.g. `approvers:`).
    pub top: &'a str,
    /// More keys of stage `cutover` (indented 4, e.g. `signoff:`).
    pub stage: &'a str,
}

/// Freeze the source, then deploy to the target.
pub const FREEZE_AND_DEPLOY: &str = "{ freeze: analyzer }, { deploy: analyzer }";

impl<'a> CutoverPlan<'a> {
    /// Plan `name` with stage `cutover` running `steps` and nothing else added.
    pub fn new(name: &'a str, steps: &'a str) -> Self {
        Self {
            name,
            steps,
            workload: "",
            transform: "",
            top: "",
            stage: "",
        }
    }

    /// The plan's YAML.
    pub fn render(&self) -> String {
        let Self {
            name,
            steps,
            workload,
            transform,
            top,
            stage,
        } = self;
        format!(
            r#"apiVersion: relocate/v1
kind: MigrationPlan
name: {name}
regions:
  moscow: {{ jurisdiction: RU }}
  zurich: {{ jurisdiction: CH }}
source: moscow
target: zurich
clusters:
  msk: {{ region: moscow, context: src, kubeconfig: kubeconfig.yaml }}
  zrh: {{ region: zurich, context: dst, kubeconfig: kubeconfig.yaml }}
workloads:
  analyzer:
    kubernetes:
      from: msk
      to: zrh
      namespace: analysis
      selector: {{ app: analyzer }}
{workload}      transform:
        namespace: analysis-zrh
{transform}{top}stages:
  - name: cutover
    steps: [ {steps} ]
{stage}"#
        )
    }
}
