//! Checks of an `llm:` agent block: provider, URL, key variable, limits and prices.

use super::load::Checker;
use super::model::{LlmSpec, Prices, Provider};
use super::raw::RawLlm;
use crate::diagnostic::did_you_mean;

impl Checker<'_> {
    pub(super) fn llm(&mut self, path: &str, name: &str, raw: &RawLlm) -> LlmSpec {
        let lpath = format!("{path}.llm");
        let provider = match raw.provider.as_str() {
            "anthropic" => Provider::Anthropic,
            "openai" => Provider::OpenAi,
            other => {
                let help = did_you_mean(other, ["anthropic", "openai"])
                    .or_else(|| Some("providers: `anthropic` (Messages API) and `openai` (chat completions, also vLLM, Ollama, llama.cpp, OpenRouter)".into()));
                self.error(
                    &format!("{lpath}.provider"),
                    format!("unknown provider `{other}` for agent `{name}`"),
                    help,
                );
                Provider::OpenAi
            }
        };
        if raw.model.trim().is_empty() {
            self.error(&format!("{lpath}.model"), format!("agent `{name}` needs a `model`"), None);
        }
        let default_url = match provider {
            Provider::Anthropic => "https://api.anthropic.com",
            Provider::OpenAi => "https://api.openai.com/v1",
        };
        let base_url = raw.base_url.clone().unwrap_or_else(|| default_url.to_owned());
        match reqwest::Url::parse(&base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => self.error(
                &format!("{lpath}.base_url"),
                format!("`base_url` of agent `{name}` must be an http(s) URL, got `{base_url}`"),
                Some(format!("for example `{default_url}` or `http://localhost:8000/v1`")),
            ),
        }
        let api_key_env = match &raw.api_key_env {
            Some(v) if v.is_empty() => None,
            Some(v) if v.contains(['=', '\0']) || v.trim() != v => {
                self.error(
                    &format!("{lpath}.api_key_env"),
                    format!("`api_key_env` of agent `{name}` is not a variable name: `{v}`"),
                    None,
                );
                None
            }
            Some(v) => Some(v.clone()),
            None => Some(match provider {
                Provider::Anthropic => "ANTHROPIC_API_KEY".to_owned(),
                Provider::OpenAi => "OPENAI_API_KEY".to_owned(),
            }),
        };
        let max_tokens = raw.max_tokens.unwrap_or(4096);
        if !(1..=1_000_000).contains(&max_tokens) {
            self.error(
                &format!("{lpath}.max_tokens"),
                format!("`max_tokens` of agent `{name}` must be between 1 and 1000000, got {max_tokens}"),
                None,
            );
        }
        if let Some(t) = raw.temperature
            && !(t.is_finite() && (0.0..=2.0).contains(&t))
        {
            self.error(
                &format!("{lpath}.temperature"),
                format!("`temperature` of agent `{name}` must be between 0 and 2, got {t}"),
                None,
            );
        }
        let max_turns = raw.max_turns.unwrap_or(10);
        if !(1..=200).contains(&max_turns) {
            self.error(
                &format!("{lpath}.max_turns"),
                format!("`max_turns` of agent `{name}` must be between 1 and 200, got {max_turns}"),
                None,
            );
        }
        let prices = raw.prices.as_ref().map(|p| {
            for (key, v) in [("input_per_mtok", p.input_per_mtok), ("output_per_mtok", p.output_per_mtok)] {
                if !(v.is_finite() && v >= 0.0) {
                    self.error(
                        &format!("{lpath}.prices.{key}"),
                        format!("`{key}` of agent `{name}` must be zero or more, got {v}"),
                        None,
                    );
                }
            }
            Prices { input_per_mtok: p.input_per_mtok, output_per_mtok: p.output_per_mtok }
        });
        LlmSpec {
            provider,
            model: raw.model.clone(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key_env,
            max_tokens,
            temperature: raw.temperature,
            system: raw.system.clone(),
            max_turns,
            allow_commands: raw.allow_commands,
            prices,
        }
    }
}
