//! Kernel images for the VM: Debian's generic 6.1 package, fetched with apt
//! and prepared once under `target/vm/`, or any bzImage given by path.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// A kernel to boot: its image and its release (`uname -r`).
pub struct Image {
    /// The bzImage.
    pub vmlinuz: PathBuf,
    /// The release, which names its tests (`6.1.0-57-amd64`).
    pub release: String,
}

/// Debian's newest generic 6.1 image (`linux-image-6.1.0-N-amd64-unsigned`;
/// the `cloud` flavour lacks the 9p module the VM's root needs), unpacked
/// under `target/vm/PACKAGE/root` with its modules indexed. Prepared once,
/// then reused until apt offers a newer one.
///
/// # Errors
/// When apt has no such package, or downloading or unpacking fails.
pub fn debian_6_1() -> Result<Image> {
    let package = newest_6_1_package()?;
    let release = package
        .strip_prefix("linux-image-")
        .and_then(|p| p.strip_suffix("-unsigned"))
        .context("unexpected package name")?
        .to_owned();
    let cache = cmd::target_dir().join("vm");
    let dir = cache.join(&package);
    let tree = dir.join("root");
    // depmod writes modules.dep last: its presence means the tree is complete.
    if !tree
        .join(format!("lib/modules/{release}/modules.dep"))
        .is_file()
    {
        prepare(&package, &release, &dir)?;
        remove_older(&cache, &package);
    }
    Ok(Image {
        vmlinuz: tree.join(format!("boot/vmlinuz-{release}")),
        release,
    })
}

/// A bzImage given by path; its modules must be in `lib/modules/RELEASE`
/// of the tree it sits in (`…/boot/vmlinuz-R` with `…/lib/modules/R`), as
/// virtme-ng looks for them there.
///
/// # Errors
/// When the file cannot be read or is no bzImage.
pub fn given(vmlinuz: &Path) -> Result<Image> {
    let bytes = std::fs::read(vmlinuz).with_context(|| format!("reading {}", vmlinuz.display()))?;
    let release = bzimage_release(&bytes).with_context(|| {
        format!(
            "{} is no bzImage (it has no Linux boot protocol header with a version)",
            vmlinuz.display()
        )
    })?;
    Ok(Image {
        vmlinuz: vmlinuz.to_path_buf(),
        release,
    })
}

/// The release a bzImage declares: the boot protocol's setup header holds
/// `kernel_version` at 0x20e, the offset (minus 0x200) of a string that
/// starts with the release (Documentation/arch/x86/boot.rst).
fn bzimage_release(image: &[u8]) -> Option<String> {
    if image.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let at = usize::from(u16::from_le_bytes(
        image.get(0x20e..0x210)?.try_into().ok()?,
    )) + 0x200;
    let text = image.get(at..)?;
    let end = text.iter().position(|&b| b == 0 || b == b' ')?;
    let release = std::str::from_utf8(&text[..end]).ok()?;
    (!release.is_empty()).then(|| release.to_owned())
}

/// The name of the newest `linux-image-6.1.0-N-amd64-unsigned` apt knows;
/// refreshes apt's lists once when it knows none.
fn newest_6_1_package() -> Result<String> {
    if let Some(p) = newest_in(&apt_search()?) {
        return Ok(p);
    }
    cmd::run(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null()),
    )?;
    newest_in(&apt_search()?).context(
        "apt offers no linux-image-6.1.0-*-amd64-unsigned (it is in Debian 12, bookworm, and its \
         security updates): add those sources, or pass --kernel PATH to a 6.1 bzImage",
    )
}

fn apt_search() -> Result<String> {
    cmd::stdout(Command::new("apt-cache").args([
        "search",
        "--names-only",
        r"^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$",
    ]))
    .context("`apt-cache search` failed: the 6.1 kernel comes from Debian's packages")
}

/// The package of the highest ABI number `N` among `apt-cache search` lines.
fn newest_in(search: &str) -> Option<String> {
    search
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|name| {
            let abi = name
                .strip_prefix("linux-image-6.1.0-")?
                .strip_suffix("-amd64-unsigned")?;
            Some((abi.parse::<u32>().ok()?, name))
        })
        .max()
        .map(|(_, name)| name.to_owned())
}

/// Downloads `package` into `dir`, unpacks it into `dir/root` and indexes
/// its modules (the package ships no modules.dep).
fn prepare(package: &str, release: &str, dir: &Path) -> Result<()> {
    eprintln!("xtask: preparing {package} in {}", dir.display());
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", dir.display()));
        }
        _ => {}
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // As root apt would hand the download to its `_apt` user, which cannot
    // write into target/; download as root without that warning.
    cmd::run(
        Command::new("apt-get")
            .args(["-o", "APT::Sandbox::User=root", "download", package])
            .current_dir(dir)
            .stdin(Stdio::null()),
    )?;
    let deb = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("apt-get download left no .deb in {}", dir.display()))?;
    let partial = dir.join("root.partial");
    cmd::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&partial))?;
    let tree = dir.join("root");
    std::fs::rename(&partial, &tree)?;
    cmd::run(Command::new("depmod").arg("-b").arg(&tree).arg(release))?;
    if !tree.join(format!("boot/vmlinuz-{release}")).is_file() {
        bail!("{package} holds no boot/vmlinuz-{release}");
    }
    Ok(())
}

/// Removes the trees of older 6.1 packages (400 MB each).
fn remove_older(cache: &Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("linux-image-6.1.0-") && name != keep {
            eprintln!("xtask: removing the older {}", e.path().display());
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_highest_abi_number() {
        let search = "linux-image-6.1.0-9-amd64-unsigned - Linux 6.1 for 64-bit PCs\n\
                      linux-image-6.1.0-57-amd64-unsigned - Linux 6.1 for 64-bit PCs\n\
                      linux-image-6.1.0-50-amd64-unsigned - Linux 6.1 for 64-bit PCs\n";
        assert_eq!(
            newest_in(search).as_deref(),
            Some("linux-image-6.1.0-57-amd64-unsigned")
        );
        assert_eq!(newest_in(""), None);
    }

    #[test]
    fn reads_the_release_from_a_setup_header() {
        let mut image = vec![0u8; 0x400];
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        let s = b"6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP\0";
        image[0x300..0x300 + s.len()].copy_from_slice(s);
        assert_eq!(bzimage_release(&image).as_deref(), Some("6.1.0-57-amd64"));
        image[0x202] = b'X';
        assert_eq!(bzimage_release(&image), None);
    }
}
