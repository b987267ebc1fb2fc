//! Which keys a workload moves: include and exclude globs.

use globset::{Glob, GlobSet, GlobSetBuilder};

/// Include/exclude glob filter over keys (relative to the store prefix).
#[derive(Debug, Clone)]
pub struct KeyFilter {
    include: GlobSet,
    exclude: GlobSet,
}

impl KeyFilter {
    /// Build from the plan's patterns (validated already, so errors here are unexpected).
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, globset::Error> {
        Ok(Self {
            include: build(include)?,
            exclude: build(exclude)?,
        })
    }

    /// Everything.
    pub fn all() -> Self {
        Self::new(&["**".to_owned()], &[]).expect("`**` is a valid glob")
    }

    /// Whether the key is moved.
    pub fn matches(&self, key: &str) -> bool {
        self.include.is_match(key) && !self.exclude.is_match(key)
    }
}

fn build(patterns: &[String]) -> Result<GlobSet, globset::Error> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p)?);
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_and_exclude() {
        let f = KeyFilter::new(&["logs/**".into(), "*.json".into()], &["**/*.tmp".into()]).unwrap();
        assert!(f.matches("logs/2024/a.log"));
        assert!(f.matches("x.json"));
        assert!(!f.matches("logs/a.tmp"));
        assert!(!f.matches("other/a.log"));
        assert!(KeyFilter::all().matches("deep/ü nicode/файл"));
    }
}
