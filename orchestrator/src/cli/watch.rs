//! `relocate watch PLAN`: the live dashboard (see [`crate::watch`]). `q` or Ctrl-C
//! quits; the screen is restored whatever happens.

use std::time::Duration;

use anyhow::Context as _;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};

use super::{StateArgs, load_plan, state_dir};
use crate::exit;
use crate::watch::{model::Sampler, view};

/// `relocate watch` arguments.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The plan file.
    pub plan: std::path::PathBuf,
    /// State directory.
    #[command(flatten)]
    pub state: StateArgs,
}

/// Run the dashboard until `q`.
pub fn watch(args: &WatchArgs) -> anyhow::Result<u8> {
    let plan = load_plan(&args.plan)?;
    let state = state_dir(&args.state, &plan);
    let mut sampler = Sampler::default();
    // Read once before taking the screen, so a broken state is an ordinary error.
    let mut model = sampler.read(&plan, &state).context("reading the state")?;
    let mut terminal = ratatui::try_init().context("taking the terminal")?;
    let result = (|| -> anyhow::Result<()> {
        loop {
            terminal.draw(|f| view::draw(f, &model))?;
            if event::poll(Duration::from_secs(1))?
                && let Event::Key(key) = event::read()?
            {
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                if key.code == KeyCode::Char('q') || key.code == KeyCode::Esc || ctrl_c {
                    return Ok(());
                }
            }
            model = sampler.read(&plan, &state)?;
        }
    })();
    ratatui::restore();
    result?;
    Ok(exit::SUCCESS)
}
