//! Files carried in a plain answer as fenced code blocks whose info string names a path:
//! ```` ```rust path=src/main.rs ```` (or `file=`). Blocks without a path are ignored.

/// (path, content) for each tagged block, in order.
pub(super) fn files(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let fence_len = trimmed.chars().take_while(|c| *c == '`').count();
        if fence_len < 3 {
            continue;
        }
        let info = &trimmed[fence_len..];
        let path = info
            .split_whitespace()
            .find_map(|t| t.strip_prefix("path=").or_else(|| t.strip_prefix("file=")))
            .map(|p| p.trim_matches(['"', '\'']).to_owned());
        let fence = "`".repeat(fence_len);
        let mut content = String::new();
        for body in lines.by_ref() {
            if body.trim_start().starts_with(&fence) && body.trim_start().trim_start_matches('`').trim().is_empty() {
                break;
            }
            content.push_str(body);
            content.push('\n');
        }
        if let Some(p) = path.filter(|p| !p.is_empty()) {
            out.push((p, content));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_blocks_become_files_and_untagged_ones_are_ignored() {
        let text = "Here:\n```rust path=src/main.rs\nfn main() {}\n```\n```\nnot a file\n```\n````md file=\"docs/A.md\"\n# A\n```inner```\n````\n";
        assert_eq!(
            files(text),
            vec![("src/main.rs".into(), "fn main() {}\n".into()), ("docs/A.md".into(), "# A\n```inner```\n".into())]
        );
    }
}
