//! The starter projects `quickstart --type TYPE` writes: the demo (the default template), model
//! agents through Anthropic's or an OpenAI-compatible API, and a CLI coding agent. Each is a
//! config, prompts, an intake and a starter project structure, embedded in the binary.

/// One starter.
#[derive(Debug)]
pub(crate) struct Starter {
    pub name: &'static str,
    /// One line for the list.
    pub about: &'static str,
    /// (path in the workspace, contents)
    pub files: &'static [(&'static str, &'static str)],
    /// What the run needs before it can start (the quickstart runs it only then).
    pub needs: Needs,
}

/// What a starter's agents need from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    Nothing,
    /// An API key in this environment variable.
    Key(&'static str),
    /// A program on PATH.
    Program(&'static str),
}

const LLM_SHARED: [(&str, &str); 7] = [
    (".claude/intake.yaml", include_str!("../templates/llm/intake.yaml")),
    (".claude/prompts/planner.md", include_str!("../templates/llm/prompts/planner.md")),
    (".claude/prompts/coder.md", include_str!("../templates/llm/prompts/coder.md")),
    (".claude/prompts/reviewer.md", include_str!("../templates/llm/prompts/reviewer.md")),
    ("README.md", include_str!("../templates/llm/README.md")),
    (".gitignore", include_str!("../templates/llm/gitignore")),
    ("src/.gitkeep", ""),
];

const LLM: [(&str, &str); 8] = {
    let s = LLM_SHARED;
    [(".claude/config.yaml", include_str!("../templates/llm/config.yaml")), s[0], s[1], s[2], s[3], s[4], s[5], s[6]]
};

const LLM_OPENAI: [(&str, &str); 8] = {
    let s = LLM_SHARED;
    [
        (".claude/config.yaml", include_str!("../templates/llm/config.openai.yaml")),
        s[0],
        s[1],
        s[2],
        s[3],
        s[4],
        s[5],
        s[6],
    ]
};

const CLAUDE_CODE: [(&str, &str); 8] = [
    (".claude/config.yaml", include_str!("../templates/claude-code/config.yaml")),
    (".claude/intake.yaml", include_str!("../templates/claude-code/intake.yaml")),
    (".claude/prompts/planner.md", include_str!("../templates/claude-code/prompts/planner.md")),
    (".claude/prompts/coder.md", include_str!("../templates/claude-code/prompts/coder.md")),
    ("scripts/check.sh", include_str!("../templates/claude-code/check.sh")),
    ("README.md", include_str!("../templates/claude-code/README.md")),
    (".gitignore", include_str!("../templates/claude-code/gitignore")),
    ("src/.gitkeep", ""),
];

pub(crate) const ALL: [Starter; 4] = [
    Starter {
        name: "demo",
        about: "shell agents, no keys: plan, build and verify a tiny program (the default)",
        files: &crate::template::FILES,
        needs: Needs::Nothing,
    },
    Starter {
        name: "llm",
        about: "a planner, coder and reviewer on Anthropic's API, with file tools (ANTHROPIC_API_KEY)",
        files: &LLM,
        needs: Needs::Key("ANTHROPIC_API_KEY"),
    },
    Starter {
        name: "llm-openai",
        about: "the same on an OpenAI-compatible API: OpenAI, vLLM, Ollama, LiteLLM (OPENAI_API_KEY)",
        files: &LLM_OPENAI,
        needs: Needs::Key("OPENAI_API_KEY"),
    },
    Starter {
        name: "claude-code",
        about: "Claude Code plans and writes the code, a person reviews at each gate, checks run last",
        files: &CLAUDE_CODE,
        needs: Needs::Program("claude"),
    },
];

/// The starter called `name`.
pub(crate) fn find(name: &str) -> Option<&'static Starter> {
    ALL.iter().find(|s| s.name == name)
}

/// The starters, one per line, for `--type` without a value and for errors.
pub(crate) fn list() -> String {
    let width = ALL.iter().map(|s| s.name.len()).max().unwrap_or(0);
    ALL.iter().map(|s| format!("  {:width$}  {}\n", s.name, s.about)).collect()
}

impl Needs {
    /// Whether this machine has it (the variable set and not empty, the program on PATH).
    pub(crate) fn met(self) -> bool {
        match self {
            Needs::Nothing => true,
            Needs::Key(var) => std::env::var_os(var).is_some_and(|v| !v.is_empty()),
            Needs::Program(name) => std::env::var_os("PATH").is_some_and(|path| {
                std::env::split_paths(&path).any(|dir| {
                    use std::os::unix::fs::PermissionsExt as _;
                    std::fs::metadata(dir.join(name)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                })
            }),
        }
    }

    /// What to do when it is not met.
    pub(crate) fn how(self) -> String {
        match self {
            Needs::Nothing => String::new(),
            Needs::Key(var) => format!("set {var} (see the config's header for another provider)"),
            Needs::Program(name) => format!("install `{name}` and log in (or set ANTHROPIC_API_KEY)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_starter_has_a_config_intake_prompts_and_a_unique_name() {
        let mut names: Vec<&str> = ALL.iter().map(|s| s.name).collect();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for s in &ALL {
            let paths: Vec<&str> = s.files.iter().map(|(p, _)| p.trim_start_matches('/')).collect();
            for needed in [".claude/config.yaml", ".claude/intake.yaml"] {
                assert!(paths.contains(&needed), "{}: {paths:?}", s.name);
            }
            assert!(paths.iter().any(|p| p.starts_with(".claude/prompts/")), "{}", s.name);
        }
        assert!(list().contains("  claude-code  "), "{}", list());
    }
}
