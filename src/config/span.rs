//! Where each node of a YAML document sits, so that errors found after deserialization (an
//! unknown agent, a cycle, a bad glob) can point at file:line:col.
//!
//! serde_yaml reports positions for syntax and type errors only; this index is built from
//! yaml-rust2's event stream, keyed by a dotted path such as `phases[1].agents[0]`.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::diagnostic::Pos;

/// Positions of values and mapping keys, by path.
#[derive(Debug, Default)]
pub(crate) struct SpanIndex {
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
    /// Keys given twice in one mapping: (path, first, again), in document order.
    duplicates: Vec<(String, Pos, Pos)>,
}

impl SpanIndex {
    /// Index `source`. A document that does not parse gives an empty index (serde_yaml reports
    /// the syntax error itself).
    pub(crate) fn build(source: &str) -> SpanIndex {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(source);
        if parser.load(&mut builder, false).is_err() {
            return SpanIndex::default();
        }
        builder.index
    }

    /// Position of the value at `path`.
    pub(crate) fn value(&self, path: &str) -> Option<Pos> {
        self.values.get(path).copied()
    }

    /// Keys given twice in one mapping: the path, where it first was, and where it is again.
    pub(crate) fn duplicates(&self) -> &[(String, Pos, Pos)] {
        &self.duplicates
    }

    /// Position of the key whose value is at `path`, falling back to the value.
    pub(crate) fn key(&self, path: &str) -> Option<Pos> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }
}

enum Frame {
    Mapping { path: String, key: Option<String> },
    Sequence { path: String, index: usize },
}

#[derive(Default)]
struct Builder {
    index: SpanIndex,
    stack: Vec<Frame>,
}

fn pos(mark: &Marker) -> Pos {
    Pos { line: mark.line(), col: mark.col() + 1 }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

impl Builder {
    /// Path for a value node starting now, or `None` if the node is a mapping key.
    fn enter_node(&mut self, ev: &Event, mark: &Marker) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Mapping { path, key }) => match key.take() {
                Some(k) => Some(join(path, &k)),
                None => {
                    let k = match ev {
                        Event::Scalar(v, ..) => v.clone(),
                        _ => String::from("?"),
                    };
                    let full = join(path, &k);
                    match self.index.keys.get(&full) {
                        Some(first) if k != "?" => self.index.duplicates.push((full, *first, pos(mark))),
                        Some(_) => {}
                        None => {
                            self.index.keys.insert(full, pos(mark));
                        }
                    }
                    *key = Some(k);
                    None
                }
            },
            Some(Frame::Sequence { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                Some(p)
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match &ev {
            Event::Scalar(..) | Event::Alias(..) => {
                if let Some(path) = self.enter_node(&ev, &mark) {
                    self.index.values.insert(path, pos(&mark));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // A collection used as a mapping key is unusual; index it under `?`.
                let path = self.enter_node(&ev, &mark).unwrap_or_else(|| String::from("?"));
                self.index.values.insert(path.clone(), pos(&mark));
                self.stack.push(match ev {
                    Event::MappingStart(..) => Frame::Mapping { path, key: None },
                    _ => Frame::Sequence { path, index: 0 },
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
}
