//! Running the engine for a command: the terminal display, signal handling, polling a
//! pull request's gate, the exit code, and what the runner shows afterwards.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};

use super::invocation::Invocation;
use super::{AppError, status};
use crate::cli::ExecArgs;
use crate::engine::{Engine, Mode, RunOptions};
use crate::executor::Cancel;
use crate::exit_code;
use crate::state::{AgentStatus, RunStatus, StateStore};

/// Stop the run on Ctrl-C / SIGTERM: gracefully at the first, at once at the second.
async fn watch_signals(tx: watch::Sender<Cancel>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return;
    };
    let mut count = 0;
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        count += 1;
        if count == 1 {
            errln!(
                "\nstopping: no new agents start; running agents get SIGTERM (press Ctrl-C again to kill them at once)"
            );
            let _ = tx.send(Cancel::Graceful);
        } else {
            errln!("killing running agents");
            let _ = tx.send(Cancel::Immediate);
        }
    }
}

/// Run the engine with the terminal display and signal handling; print where the run stands.
/// At a GitHub gate with `wait: poll`, keep checking until a decision or the poll timeout.
pub(crate) async fn drive(inv: Invocation, store: StateStore, mode: Mode, exec: &ExecArgs) -> Result<i32, AppError> {
    let gate = inv.gate()?;
    let pull_request = inv.pull_request().map(|pr| pr.number);
    let Invocation { wf, redactor, .. } = inv;
    let (events, rx) = mpsc::unbounded_channel();
    let (cancel_tx, cancel_rx) = watch::channel(Cancel::None);
    let signals = tokio::spawn(watch_signals(cancel_tx));
    let display = tokio::spawn(crate::output::display(rx, redactor.clone()));
    let runner = super::runner::Runner::detect();
    if let Some(r) = &runner {
        r.mask(&redactor);
    }
    let since = Utc::now();
    let wf = Arc::new(wf);
    let started = std::time::Instant::now();
    let mut store = store;
    let mut mode = mode;
    let (result, state) = loop {
        let opts = RunOptions {
            mode: mode.clone(),
            max_workers: exec.max_workers.map(|n| n as usize),
            timeout: exec.timeout.map(Duration::from_secs_f64),
            force_parallel: exec.parallel,
            only_agent: exec.only_agent.clone(),
        };
        let engine = Engine::new(
            Arc::clone(&wf),
            store,
            events.clone(),
            cancel_rx.clone(),
            Arc::clone(&gate),
            redactor.clone(),
            opts,
        );
        let (result, back) = engine.run().await;
        let polling = matches!(&result, Ok(s) if s.status == RunStatus::AwaitingApproval && !s.interrupted)
            && pull_request.is_some()
            && exec.wait.unwrap_or(wf.consensus.wait) == crate::config::WaitMode::Poll
            && started.elapsed() + wf.consensus.poll_interval < wf.consensus.poll_timeout;
        if !polling {
            break (result, back.state);
        }
        errln!(
            "waiting for a decision on pull request #{}; checking again in {}s",
            pull_request.unwrap_or_default(),
            wf.consensus.poll_interval.as_secs()
        );
        let mut cancel = cancel_rx.clone();
        tokio::select! {
            _ = tokio::time::sleep(wf.consensus.poll_interval) => {}
            _ = cancel.wait_for(|c| *c != Cancel::None) => break (result, back.state),
        }
        store = back;
        mode = Mode::Continue;
    };
    drop(events);
    let _ = display.await;
    signals.abort();
    let summary = result?;
    status::print_outcome(&wf, &state, &redactor);
    let agent_failed = match (&mode, &exec.only_agent) {
        (Mode::Phase(phase), Some(agent)) => {
            state.phases.get(phase).and_then(|p| p.agents.get(agent)).is_some_and(|s| s.status == AgentStatus::Failed)
        }
        _ => false,
    };
    let code = if summary.interrupted {
        exit_code::INTERRUPTED
    } else {
        match summary.status {
            // One agent of an open phase: its own outcome.
            RunStatus::Running if agent_failed => exit_code::FAILED,
            RunStatus::Completed | RunStatus::Running => exit_code::SUCCESS,
            RunStatus::AwaitingApproval => exit_code::AWAITING_APPROVAL,
            RunStatus::Failed => exit_code::FAILED,
            RunStatus::Rejected => exit_code::REJECTED,
            RunStatus::Interrupted => exit_code::INTERRUPTED,
        }
    };
    if let Some(r) = &runner {
        r.finish(&wf, &state, code, since, &redactor);
    }
    Ok(code)
}
