//! `portcullis man` and `portcullis completions`: man pages and shell
//! completion scripts generated from the command definitions.

use super::error::CliError;

pub(super) fn man(out_dir: &std::path::Path, mut cmd: clap::Command) -> Result<u8, CliError> {
    fn write_all(
        cmd: &clap::Command,
        name: &str,
        dir: &std::path::Path,
        n: &mut usize,
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .title(name.to_ascii_uppercase())
            .render(&mut buf)?;
        std::fs::write(dir.join(format!("{name}.1")), buf)?;
        *n += 1;
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            write_all(sub, &format!("{name}-{}", sub.get_name()), dir, n)?;
        }
        Ok(())
    }
    std::fs::create_dir_all(out_dir)?;
    cmd.build();
    let mut n = 0;
    write_all(&cmd, "portcullis", out_dir, &mut n)?;
    eprintln!("portcullis: wrote {n} man pages to {}", out_dir.display());
    Ok(0)
}
