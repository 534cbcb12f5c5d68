//! Placeholder: being written.
#[derive(Debug, clap::Args)]
pub struct DataBenchArgs {}
pub fn run(_args: DataBenchArgs) -> anyhow::Result<()> { anyhow::bail!("not yet written") }
