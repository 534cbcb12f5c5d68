//! Placeholder: being written.
#[derive(Debug, clap::Args)]
pub struct CrawlArgs {}
pub fn run(_args: CrawlArgs) -> anyhow::Result<()> { anyhow::bail!("not yet written") }
