//! Placeholder: being written.
#[derive(Debug, clap::Args)]
pub struct ServeGalleryArgs {}
#[derive(Debug, clap::Args)]
pub struct AuditArgs {}
pub fn run_serve(_args: ServeGalleryArgs) -> anyhow::Result<()> { anyhow::bail!("not yet written") }
pub fn run_audit(_args: AuditArgs) -> anyhow::Result<()> { anyhow::bail!("not yet written") }
