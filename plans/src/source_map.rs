//! Where each node of a plan sits in its file.
//!
//! Serde forgets positions once a plan is deserialised, but every semantic problem
//! must still be reported as `file:line:col`. This module walks the YAML event stream
//! of the same text (with `granit-parser`, the parser serde-saphyr itself uses, so both
//! agree on what the document is) and records, for each YAML path such as
//! `stages[1].steps[0].copy` or `stores.telemetry-dst.options.secret_access_key`, the
//! position of the key (for mapping entries) and of the value. Paths are built with
//! [`join_key`] and [`join_index`], the same helpers validation uses, so a problem's
//! path always finds its node. Only the first document counts; nodes reached through
//! an alias keep the alias's position.

use std::collections::HashMap;

use granit_parser::{Event, Parser, Span};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
}

impl Position {
    fn of(span: &Span) -> Self {
        Self {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// Where a node is: the key that introduces it (for mapping entries) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePosition {
    /// The mapping key, when the node is a mapping entry.
    pub key: Option<Position>,
    /// The value's first character.
    pub value: Position,
}

/// YAML path → position for every node of a document.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    nodes: HashMap<String, NodePosition>,
}

/// `parent.key`, or `key` at the root.
pub fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub fn join_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

impl SourceMap {
    /// Map the first document of `text`. A syntax error ends the walk early; what was
    /// mapped until then is kept (the deserialiser reports the error itself).
    pub fn build(text: &str) -> Self {
        let mut walker = Walker {
            events: Parser::new_from_str(text),
            map: Self::default(),
        };
        walker.document();
        walker.map
    }

    /// The node at `path`, or at its nearest mapped ancestor (a missing key is
    /// reported on the mapping that should hold it).
    pub fn find(&self, path: &str) -> Option<NodePosition> {
        let mut current = path;
        loop {
            if let Some(node) = self.nodes.get(current) {
                return Some(*node);
            }
            current = parent_path(current)?;
        }
    }

    /// The path of the node whose key or value starts at `at`, else of the last node
    /// that starts before it (a deserialiser error points inside that node).
    pub fn path_at(&self, at: Position) -> Option<&str> {
        let mut best: Option<(Position, &str)> = None;
        for (path, node) in &self.nodes {
            for start in node.key.into_iter().chain([node.value]) {
                let better = match best {
                    None => start <= at,
                    Some((b, bp)) => {
                        start <= at && (start > b || (start == b && path.len() > bp.len()))
                    }
                };
                if better {
                    best = Some((start, path.as_str()));
                }
            }
        }
        best.map(|(_, p)| p)
    }
}

/// `a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``; `None` at the root.
fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = if path.ends_with(']') {
        path.rfind('[')
    } else {
        path.rfind('.')
    };
    Some(cut.map_or("", |i| &path[..i]))
}

struct Walker<'a> {
    events: Parser<'a, granit_parser::StrInput<'a>>,
    map: SourceMap,
}

impl<'a> Walker<'a> {
    /// The next event that is part of the node tree (comments and anchor metadata skipped).
    fn next(&mut self) -> Option<(Event<'a>, Span)> {
        loop {
            let (event, span) = self.events.next()?.ok()?;
            match event {
                Event::Anchor(..) => continue,
                #[allow(unreachable_patterns)]
                Event::StreamStart
                | Event::DocumentStart(..)
                | Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::SequenceEnd
                | Event::MappingStart(..)
                | Event::MappingEnd
                | Event::Alias(..)
                | Event::UnresolvedAlias(..)
                | Event::DocumentEnd
                | Event::StreamEnd => return Some((event, span)),
                _ => continue,
            }
        }
    }

    fn document(&mut self) {
        while let Some((event, span)) = self.next() {
            match event {
                Event::StreamStart | Event::DocumentStart(..) => continue,
                Event::DocumentEnd | Event::StreamEnd => return,
                node => {
                    self.node(String::new(), None, node, span);
                    return;
                }
            }
        }
    }

    /// Record the node that starts with `event` under `path`, then its children.
    /// Returns `None` when the stream ended early.
    fn node(
        &mut self,
        path: String,
        key: Option<Position>,
        event: Event<'a>,
        span: Span,
    ) -> Option<()> {
        let value = Position::of(&span);
        self.map
            .nodes
            .insert(path.clone(), NodePosition { key, value });
        match event {
            Event::MappingStart(..) => self.mapping(&path),
            Event::SequenceStart(..) => self.sequence(&path),
            _ => Some(()),
        }
    }

    fn mapping(&mut self, path: &str) -> Option<()> {
        loop {
            let (event, span) = self.next()?;
            let key = match event {
                Event::MappingEnd => return Some(()),
                Event::Scalar(ref k, ..) => Some(k.to_string()),
                other => {
                    // A complex key: map it under a throwaway path so its children are consumed.
                    self.node(format!("{path}.?"), None, other, span)?;
                    None
                }
            };
            let (value_event, value_span) = self.next()?;
            let key_pos = key.as_ref().map(|_| Position::of(&span));
            let child = key.map_or_else(|| format!("{path}.?"), |k| join_key(path, &k));
            self.node(child, key_pos, value_event, value_span)?;
        }
    }

    fn sequence(&mut self, path: &str) -> Option<()> {
        let mut index = 0;
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::SequenceEnd) {
                return Some(());
            }
            self.node(join_index(path, index), None, event, span)?;
            index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
name: demo
stores:
  dst:
    options:
      secret_access_key: \"${env:X}\"
stages:
  - name: seed
    steps: [ { copy: telemetry }, { verify: telemetry } ]
";

    fn at(line: usize, column: usize) -> Position {
        Position { line, column }
    }

    #[test]
    fn block_and_flow_nodes_have_key_and_value_positions() {
        let map = SourceMap::build(DOC);
        let secret = map
            .find("stores.dst.options.secret_access_key")
            .expect("mapped");
        assert_eq!(secret.key, Some(at(5, 7)));
        assert_eq!(secret.value, at(5, 26));
        let verify = map.find("stages[0].steps[1].verify").expect("mapped");
        assert_eq!(verify.key, Some(at(8, 37)));
        assert_eq!(verify.value, at(8, 45));
    }

    #[test]
    fn missing_path_falls_back_to_nearest_ancestor() {
        let map = SourceMap::build(DOC);
        let found = map.find("stages[0].signoff").expect("ancestor mapped");
        assert_eq!(found.value, at(7, 5));
    }

    #[test]
    fn position_maps_back_to_path() {
        let map = SourceMap::build(DOC);
        assert_eq!(
            map.path_at(at(5, 7)),
            Some("stores.dst.options.secret_access_key")
        );
        assert_eq!(map.path_at(at(8, 40)), Some("stages[0].steps[1].verify"));
    }

    #[test]
    fn syntax_error_keeps_what_was_mapped() {
        let map = SourceMap::build("name: demo\nstages: [ {\n");
        assert_eq!(map.find("name").map(|n| n.value), Some(at(1, 7)));
    }
}
