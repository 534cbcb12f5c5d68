//! Placeholder: being written.
#[derive(Debug, clap::Args)]
pub struct SplitArgs {}
pub fn run(_args: SplitArgs) -> anyhow::Result<()> { anyhow::bail!("not yet written") }
