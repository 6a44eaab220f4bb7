//! Robustness: corrupted configs give located errors, never panics.

use std::path::Path;

use super::load::parse;

/// Corrupt the default template in thousands of deterministic ways; every result must be a
/// workflow or a located error, never a panic.
#[test]
fn no_mutation_of_a_valid_config_panics() {
    let base = crate::template::FILES[0].1;
    let tokens = [
        "",
        "-1",
        "1e300",
        ".nan",
        "~",
        "[",
        "{",
        "\"x\"",
        "[a, b]",
        "{a: 1}",
        "&a x",
        "*a",
        "!!binary x",
        "0",
        "\t",
        ": :",
        "- -",
    ];
    let lines: Vec<&str> = base.lines().collect();
    let mut seed = 0x9e37_79b9_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let mut mutated: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        for _ in 0..(1 + next() % 3) {
            let i = (next() as usize) % mutated.len();
            let token = tokens[(next() as usize) % tokens.len()];
            match next() % 4 {
                0 => {
                    mutated[i] = match mutated[i].split_once(": ") {
                        Some((k, _)) => format!("{k}: {token}"),
                        None => format!("{}{token}", mutated[i]),
                    }
                }
                1 => {
                    mutated.remove(i);
                    if mutated.is_empty() {
                        mutated.push(String::new());
                    }
                }
                2 => {
                    let line = mutated[i].clone();
                    mutated.insert(i, line);
                }
                _ => {
                    let cut = (next() as usize) % (mutated[i].len() + 1);
                    let keep: String = mutated[i].chars().take(cut).collect();
                    mutated[i] = keep;
                }
            }
        }
        let text = mutated.join("\n");
        if let Err(e) = parse(Path::new("."), Path::new(".claude/config.yaml"), &text) {
            let shown = e.to_string();
            assert!(shown.starts_with("error: "), "{shown}\n--- from ---\n{text}");
        }
    }
}
