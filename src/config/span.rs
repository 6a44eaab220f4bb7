//! Where each node of a YAML document sits, so that errors found after deserialization (an
//! unknown agent, a cycle, a bad glob) can point at file:line:col.
//!
//! serde_yaml reports positions for syntax and type errors only; this index is built from
//! yaml-rust2's event stream, keyed by a dotted path such as `phases[1].agents[0]`.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::diagnostic::Pos;

/// A key given twice in one mapping: its path, where it first was, and where it is again.
pub(crate) type Duplicate = (String, Pos, Pos);

/// Positions of values and mapping keys, by path.
#[derive(Debug, Default)]
pub(crate) struct SpanIndex {
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
    /// Keys given twice in one mapping, in document order.
    duplicates: Vec<Duplicate>,
}

impl SpanIndex {
    /// Index `source`. A document that does not parse gives an empty index (serde_yaml reports
    /// the syntax error itself).
    pub(crate) fn build(source: &str) -> SpanIndex {
        Builder::run(source, true)
    }

    /// Only the keys given twice in one mapping, in document order: all a valid config needs,
    /// without a path for every node.
    pub(crate) fn duplicates_in(source: &str) -> Vec<Duplicate> {
        Builder::run(source, false).duplicates
    }

    /// Position of the value at `path`.
    pub(crate) fn value(&self, path: &str) -> Option<Pos> {
        self.values.get(path).copied()
    }

    /// Keys given twice in one mapping: the path, where it first was, and where it is again.
    #[cfg(test)]
    pub(crate) fn duplicates(&self) -> &[Duplicate] {
        &self.duplicates
    }

    /// Position of the key whose value is at `path`, falling back to the value.
    pub(crate) fn key(&self, path: &str) -> Option<Pos> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }
}

/// Where a node sits in its parent: the root, under a key, or at an index.
enum Seg {
    Root,
    Key(String),
    Index(usize),
}

enum Frame {
    /// `key`: the key whose value comes next; `seen`: this mapping's keys so far.
    Mapping {
        seg: Seg,
        key: Option<String>,
        seen: HashMap<String, Pos>,
    },
    Sequence {
        seg: Seg,
        index: usize,
    },
}

impl Frame {
    fn seg(&self) -> &Seg {
        match self {
            Frame::Mapping { seg, .. } | Frame::Sequence { seg, .. } => seg,
        }
    }
}

struct Builder {
    index: SpanIndex,
    stack: Vec<Frame>,
    /// Whether to record every node's position, or only keys given twice.
    positions: bool,
}

fn pos(mark: &Marker) -> Pos {
    Pos { line: mark.line(), col: mark.col() + 1 }
}

impl Builder {
    fn run(source: &str, positions: bool) -> SpanIndex {
        let mut builder = Builder { index: SpanIndex::default(), stack: Vec::new(), positions };
        let mut parser = Parser::new_from_str(source);
        if parser.load(&mut builder, false).is_err() {
            return SpanIndex::default();
        }
        builder.index
    }

    /// The dotted path of the node at `last` under the open collections.
    fn path(&self, last: &Seg) -> String {
        let mut path = String::new();
        for seg in self.stack.iter().map(Frame::seg).chain([last]) {
            match seg {
                Seg::Root => {}
                Seg::Key(k) if path.is_empty() => path.push_str(k),
                Seg::Key(k) => {
                    path.push('.');
                    path.push_str(k);
                }
                Seg::Index(i) => {
                    use std::fmt::Write;
                    let _ = write!(path, "[{i}]");
                }
            }
        }
        path
    }

    /// Where a value node starting now sits, or `None` if the node is a mapping key.
    fn enter_node(&mut self, ev: &Event, mark: &Marker) -> Option<Seg> {
        match self.stack.last_mut() {
            None => Some(Seg::Root),
            Some(Frame::Sequence { index, .. }) => {
                *index += 1;
                Some(Seg::Index(*index - 1))
            }
            Some(Frame::Mapping { key, .. }) if key.is_some() => key.take().map(Seg::Key),
            Some(Frame::Mapping { .. }) => {
                let k = match ev {
                    Event::Scalar(v, ..) => v.clone(),
                    _ => String::from("?"),
                };
                let first = match self.stack.last() {
                    Some(Frame::Mapping { seen, .. }) => seen.get(&k).copied(),
                    _ => None,
                };
                let seg = Seg::Key(k);
                match first {
                    Some(first) if !matches!(&seg, Seg::Key(k) if k == "?") => {
                        let full = self.path(&seg);
                        self.index.duplicates.push((full, first, pos(mark)));
                    }
                    Some(_) => {}
                    None => {
                        if self.positions {
                            let full = self.path(&seg);
                            self.index.keys.entry(full).or_insert_with(|| pos(mark));
                        }
                        if let (Some(Frame::Mapping { seen, .. }), Seg::Key(k)) = (self.stack.last_mut(), &seg) {
                            seen.insert(k.clone(), pos(mark));
                        }
                    }
                }
                if let (Some(Frame::Mapping { key, .. }), Seg::Key(k)) = (self.stack.last_mut(), seg) {
                    *key = Some(k);
                }
                None
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match &ev {
            Event::Scalar(..) | Event::Alias(..) => {
                if let Some(seg) = self.enter_node(&ev, &mark)
                    && self.positions
                {
                    let path = self.path(&seg);
                    self.index.values.insert(path, pos(&mark));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // A collection used as a mapping key is unusual; index it under `?`.
                let seg = self.enter_node(&ev, &mark).unwrap_or_else(|| Seg::Key(String::from("?")));
                if self.positions {
                    let path = self.path(&seg);
                    self.index.values.insert(path, pos(&mark));
                }
                self.stack.push(match ev {
                    Event::MappingStart(..) => Frame::Mapping { seg, key: None, seen: HashMap::new() },
                    _ => Frame::Sequence { seg, index: 0 },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_values_and_keys_by_path() {
        let src = "agents:\n  builder:\n    entrypoints: {default: make}\nphases:\n  - name: build\n    agents: [builder, tester]\n";
        let idx = SpanIndex::build(src);
        assert_eq!(idx.key("agents.builder"), Some(Pos { line: 2, col: 3 }));
        assert_eq!(idx.value("agents.builder.entrypoints.default"), Some(Pos { line: 3, col: 28 }));
        assert_eq!(idx.value("phases[0].name"), Some(Pos { line: 5, col: 11 }));
        assert_eq!(idx.value("phases[0].agents[1]"), Some(Pos { line: 6, col: 23 }));
    }

    #[test]
    fn finds_keys_given_twice_in_one_mapping_only() {
        let src = "agents:\n  a:\n    x: 1\n    x: 2\n  b: {y: 1}\n  a: {}\nphases:\n  - {name: p, name: q}\n\
                   'a.b': {c: 1}\na: {b: {c: 2}}\n";
        let want = vec![
            ("agents.a.x".to_string(), Pos { line: 3, col: 5 }, Pos { line: 4, col: 5 }),
            ("agents.a".to_string(), Pos { line: 2, col: 3 }, Pos { line: 6, col: 3 }),
            ("phases[0].name".to_string(), Pos { line: 8, col: 6 }, Pos { line: 8, col: 15 }),
        ];
        assert_eq!(SpanIndex::duplicates_in(src), want);
        // The full index finds the same, and the same path reached through two different
        // mappings (a dotted key) is not a duplicate.
        assert_eq!(SpanIndex::build(src).duplicates(), want.as_slice());
    }
}
