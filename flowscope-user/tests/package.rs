//! The Debian package as an admin meets it. `cargo xtask test` packages the
//! tests' own flowscope binary the way `cargo xtask package` packages the
//! release one and names the .deb in `FLOWSCOPE_DEB`; each test unpacks it
//! with `dpkg-deb -x` into a temporary root. One checks what it installs
//! (control files, unit, config, logrotate, man pages, completions) with the
//! tools that use them; the other, as root, runs the unit's `ExecStart` from
//! the unpacked tree by hand (there is no systemd here) the way the unit
//! would: as an unprivileged user with exactly the unit's capabilities,
//! capturing on a veth pair, stopped with SIGTERM.

mod common;

use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use common::{fsgen, kernel_tests_enabled, netns::TestBed, skipped, temp::TempDir};

/// The .deb `cargo xtask test` made, or a loud skip.
fn deb(test: &str) -> Option<PathBuf> {
    let deb = std::env::var_os("FLOWSCOPE_DEB").map(PathBuf::from);
    if deb.is_none() {
        skipped(
            test,
            "FLOWSCOPE_DEB is not set: `cargo xtask test` builds the package",
        );
    }
    deb
}

fn run(c: &mut Command) -> Output {
    let out = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `dpkg-deb -x DEB ROOT`.
fn unpack(deb: &Path, root: &Path) {
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(root));
}

/// The unit the package installs, unpacked under `root`.
const UNIT: &str = "usr/lib/systemd/system/flowscope.service";

/// `Key=Value` settings of a unit file's `[section]`, in order.
fn unit_settings(root: &Path, section: &str) -> Vec<(String, String)> {
    let unit = std::fs::read_to_string(root.join(UNIT)).expect("the package's unit");
    let mut current = String::new();
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_owned();
        } else if current == section
            && let Some((k, v)) = line.split_once('=')
        {
            out.push((k.to_owned(), v.to_owned()));
        }
    }
    out
}

/// The one value of `key` in the unit's `[Service]`.
fn service(root: &Path, key: &str) -> String {
    let values: Vec<String> = unit_settings(root, "Service")
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values.len(), 1, "{key}= once in the unit: {values:?}");
    values[0].clone()
}

/// The capabilities a unit setting lists.
fn caps(value: &str) -> BTreeSet<String> {
    value.split_whitespace().map(str::to_owned).collect()
}

/// What the package installs, checked with what uses it: dpkg's control
/// files, systemd's own parser, the shipped config through the binary,
/// man, bash, zsh, fish and logrotate.
#[test]
fn the_package_installs_a_service_with_its_documentation() {
    let Some(deb) = deb("the_package_installs_a_service_with_its_documentation") else {
        return;
    };
    let tmp = TempDir::new("package-files");
    let root = tmp.path().join("root");
    unpack(&deb, &root);

    // Control: the name, the libraries the binary links, the conffiles,
    // and maintainer scripts that register the unit without starting it.
    let fields = text(
        &run(Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .args(["Package", "Depends"]))
        .stdout,
    );
    assert!(fields.contains("Package: flowscope\n"), "{fields}");
    for lib in ["libc6", "libelf1", "libpcap0.8", "zlib1g"] {
        assert!(fields.contains(lib), "Depends names {lib}: {fields}");
    }
    let control = tmp.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(
        conffiles.lines().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "/etc/flowscope/flowscope.toml",
            "/etc/logrotate.d/flowscope"
        ])
    );
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    // Enabled again only if it was, started only by an upgrade's
    // try-restart: the config names no interface until the admin sets one.
    assert!(
        postinst.contains("was-enabled flowscope.service"),
        "{postinst}"
    );
    assert!(
        postinst
            .lines()
            .filter(|l| l.contains("deb-systemd-invoke") || l.contains("systemctl"))
            .all(|l| l.contains("try-restart") || l.contains("daemon-reload")),
        "{postinst}"
    );

    // The unit: the capture with the packaged config, a dynamic user with
    // exactly the capabilities the capture checks for, and a syntax
    // systemd itself accepts without a warning.
    assert_eq!(
        service(&root, "ExecStart"),
        "/usr/bin/flowscope capture --config /etc/flowscope/flowscope.toml"
    );
    let bin = root.join("usr/bin/flowscope");
    assert!(std::fs::metadata(&bin).unwrap().permissions().mode() & 0o111 != 0);
    let config = root.join("etc/flowscope/flowscope.toml");
    assert!(config.is_file());
    assert_eq!(service(&root, "DynamicUser"), "yes");
    let ambient = caps(&service(&root, "AmbientCapabilities"));
    assert_eq!(ambient, caps(&service(&root, "CapabilityBoundingSet")));
    assert_eq!(
        ambient,
        flowscope::capture::CAPABILITIES
            .iter()
            .map(|c| (*c).to_owned())
            .collect::<BTreeSet<_>>()
    );
    let o = run(Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(format!("--root={}", root.display()))
        .arg("flowscope.service"));
    assert_eq!(text(&o.stderr), "", "systemd parses every setting");
    assert!(
        text(&o.stdout).contains("Overall exposure level for flowscope.service"),
        "{}",
        text(&o.stdout)
    );

    // The shipped config is accepted as it is: what stops the capture is
    // the interface it leaves for the admin to name.
    let capture = |extra: &[&str]| {
        Command::new(&bin)
            .args(["capture", "--config"])
            .arg(&config)
            .args(["--metrics-listen", "off"])
            .args(extra)
            .output()
            .unwrap()
    };
    for (extra, needle) in [
        (&[][..], "no interface: give --iface IFACE or set iface"),
        (
            &["--iface", "fsnosuch0"][..],
            "no interface named \"fsnosuch0\"",
        ),
    ] {
        let o = capture(extra);
        let err = text(&o.stderr);
        assert!(!o.status.success());
        assert!(err.contains(needle), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    // Man pages: one per command, rendered by man without a warning.
    let man = root.join("usr/share/man/man1");
    let pages: BTreeSet<String> = std::fs::read_dir(&man)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        pages,
        [
            "flowscope.1.gz",
            "flowscope-capture.1.gz",
            "flowscope-probe.1.gz",
            "flowscope-read.1.gz"
        ]
        .map(str::to_owned)
        .into()
    );
    let mut rendered = HashMap::new();
    for page in &pages {
        let o = run(Command::new("man")
            .args(["--warnings", "-l"])
            .arg(man.join(page))
            .env("MANWIDTH", "100")
            .env("LC_ALL", "C.UTF-8"));
        assert_eq!(text(&o.stderr), "", "{page} renders without a warning");
        let out = text(&o.stdout);
        assert!(
            out.contains("NAME") && out.contains("SYNOPSIS"),
            "{page}: {out}"
        );
        rendered.insert(page.clone(), out);
    }
    assert!(rendered["flowscope.1.gz"].contains("flowscope-capture(1)"));
    let capture_page = &rendered["flowscope-capture.1.gz"];
    for needle in ["--config", "--filter", "/etc/flowscope/flowscope.toml"]
        .iter()
        .chain(flowscope::capture::CAPABILITIES.iter())
    {
        assert!(
            capture_page.contains(needle),
            "flowscope-capture(1) names {needle}"
        );
    }

    // Completions, asked the way each shell asks them.
    let completions = root.join("usr/share");
    let bash = |words: &[&str]| {
        let script = format!(
            "source {}; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE=\"${{COMP_WORDS[*]}}\"; \
             COMP_POINT=${{#COMP_LINE}}; _flowscope flowscope \"${{COMP_WORDS[COMP_CWORD]}}\" \
             \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            completions
                .join("bash-completion/completions/flowscope")
                .display(),
            words.join(" "),
            words.len() - 1
        );
        text(&run(Command::new("bash").args(["--norc", "--noprofile", "-c", &script])).stdout)
    };
    assert_eq!(bash(&["flowscope", "ca"]), "capture\n");
    assert_eq!(bash(&["flowscope", "capture", "--conf"]), "--config\n");
    let fish = text(
        &run(Command::new("fish").args([
            "--no-config",
            "-c",
            &format!(
                "source {}; complete -C 'flowscope cap'; complete -C 'flowscope capture --filter-a'",
                completions
                    .join("fish/vendor_completions.d/flowscope.fish")
                    .display()
            ),
        ]))
        .stdout,
    );
    let fish: Vec<&str> = fish.lines().filter_map(|l| l.split('\t').next()).collect();
    assert_eq!(fish, ["capture", "--filter-action"]);
    let zsh = completions.join("zsh/vendor-completions/_flowscope");
    run(Command::new("zsh").arg("-n").arg(&zsh));
    assert!(
        std::fs::read_to_string(&zsh)
            .unwrap()
            .starts_with("#compdef flowscope")
    );

    // logrotate, forced on the unpacked tree: the file is moved aside and
    // a new empty one created for the reopened output.
    let logs = root.join("var/log/flowscope");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("eve.json"), "{\"event_type\":\"flow\"}\n").unwrap();
    let rules = std::fs::read_to_string(root.join("etc/logrotate.d/flowscope")).unwrap();
    assert!(rules.contains("kill -HUP"), "{rules}");
    let rules = rules.replace("/var/log/flowscope", &logs.display().to_string());
    let conf = tmp.path().join("logrotate.conf");
    std::fs::write(&conf, rules).unwrap();
    run(Command::new("logrotate")
        .arg("--force")
        .arg("--state")
        .arg(tmp.path().join("logrotate.state"))
        .arg(&conf));
    assert_eq!(
        std::fs::read_to_string(logs.join("eve.json.1")).unwrap(),
        "{\"event_type\":\"flow\"}\n"
    );
    assert_eq!(std::fs::read_to_string(logs.join("eve.json")).unwrap(), "");
}

/// A uid systemd's DynamicUser= could give the service (61184–65519), and
/// no one else here has.
const SERVICE_UID: u32 = 61_234;

/// The unit's `ExecStart`, run from the unpacked tree with what the unit
/// gives it: an unprivileged user, only the unit's capabilities (ambient,
/// inheritable and bounding), no new privileges, its umask, a clean
/// environment with `RUNTIME_DIRECTORY`/`LOGS_DIRECTORY` owned by the user.
/// It captures on a veth pair with the packaged config, given only the
/// interface (and paths into the tree); its process holds exactly those
/// capabilities; it says in its first line which probes it could not run;
/// its metrics answer; SIGTERM stops it cleanly; the summary and the EVE
/// records account for every frame sent.
#[test]
fn the_units_command_captures_with_only_the_units_capabilities() {
    const TEST: &str = "the_units_command_captures_with_only_the_units_capabilities";
    if !kernel_tests_enabled(TEST) {
        return;
    }
    let Some(deb) = deb(TEST) else {
        return;
    };
    const FRAMES: u64 = 4_000;
    const FLOWS: u32 = 40;
    let tmp = TempDir::new("package-run");
    let root = tmp.path().join("root");
    unpack(&deb, &root);
    let bed = TestBed::new(1);

    // What systemd would set up: the directories of LogsDirectory= and
    // RuntimeDirectory=, owned by the service's user.
    let logs = root.join("var/log/flowscope");
    let runtime = root.join("run/flowscope");
    for dir in [&logs, &runtime] {
        std::fs::create_dir_all(dir).unwrap();
        std::os::unix::fs::chown(dir, Some(SERVICE_UID), Some(SERVICE_UID)).unwrap();
    }
    // What the admin does: name the interface. Paths move into the tree.
    let config = root.join("etc/flowscope/flowscope.toml");
    let summary = runtime.join("summary.json");
    let edited = std::fs::read_to_string(&config)
        .unwrap()
        .replace("/var/log/flowscope", &logs.display().to_string());
    std::fs::write(
        &config,
        format!(
            "{edited}\niface = \"{}\"\nsummary_json = \"{}\"\n",
            bed.cap_if,
            summary.display()
        ),
    )
    .unwrap();

    // ExecStart with its absolute paths taken in the unpacked tree.
    let exec: Vec<String> = service(&root, "ExecStart")
        .split_whitespace()
        .map(|w| match w.strip_prefix('/') {
            Some(rel) => {
                let p = root.join(rel);
                assert!(p.exists(), "{w} is in the package");
                p.display().to_string()
            }
            None => w.to_owned(),
        })
        .collect();
    let ambient = caps(&service(&root, "AmbientCapabilities"));
    let bounding = caps(&service(&root, "CapabilityBoundingSet"));
    assert_eq!(service(&root, "NoNewPrivileges"), "yes");
    assert_eq!(service(&root, "DynamicUser"), "yes");
    let umask = service(&root, "UMask");
    let setpriv_caps = |set: &BTreeSet<String>| {
        let mut arg = "-all".to_owned();
        for c in set {
            arg.push_str(&format!(
                ",+{}",
                c.trim_start_matches("CAP_").to_lowercase()
            ));
        }
        arg
    };
    let uid = SERVICE_UID.to_string();
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &bed.cap_ns, "setpriv"])
        .args(["--reuid", &uid, "--regid", &uid, "--clear-groups"])
        .arg("--no-new-privs")
        .arg(format!("--inh-caps={}", setpriv_caps(&ambient)))
        .arg(format!("--ambient-caps={}", setpriv_caps(&ambient)))
        .arg(format!("--bounding-set={}", setpriv_caps(&bounding)))
        .args(["--", "sh", "-c", "umask \"$0\" && exec \"$@\"", &umask])
        .args(&exec)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("RUNTIME_DIRECTORY", &runtime)
        .env("LOGS_DIRECTORY", &logs)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let stop = Stopper(child.id());

    // Up and attached: the process that runs is flowscope itself, as the
    // service's user, with exactly the unit's capabilities.
    // A bound, not a timing (the emulated VM takes 14 to 18 s).
    let deadline = Instant::now() + Duration::from_secs(120);
    while !xdp_attached(&bed) {
        if child.try_wait().unwrap().is_some() {
            let o = child.wait_with_output().unwrap();
            panic!("the capture exited ({}): {}", o.status, text(&o.stderr));
        }
        assert!(Instant::now() < deadline, "the capture did not attach");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("{name} in {status}"))
    };
    assert_eq!(field("Name:"), "flowscope");
    assert_eq!(field("Uid:"), format!("{uid}\t{uid}\t{uid}\t{uid}"));
    assert_eq!(field("NoNewPrivs:"), "1");
    let want = capability_mask(&ambient);
    for set in ["CapEff:", "CapPrm:", "CapAmb:"] {
        assert_eq!(field(set), want, "{set} {status}");
    }
    assert_eq!(field("CapBnd:"), capability_mask(&bounding));

    let flows = fsgen::send(&bed, FRAMES, FLOWS, 1, 20_000);
    let metrics = bed
        .in_cap_ns(|| common::scrape::scrape("127.0.0.1:19739".parse().unwrap()))
        .join()
        .unwrap();
    assert!(metrics.contains("flowscope_"), "{metrics}");

    // SIGTERM, as `systemctl stop` sends it: a clean exit, the program
    // detached.
    drop(stop);
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert!(o.status.success(), "exit 0 after SIGTERM: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!xdp_attached(&bed), "detached at exit");
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("flowscope: datapath on {}:", bed.cap_if))
            && first.contains(
                "not probed, so tried directly: xdp_link, need_wakeup, shared_umem \
                 (no private network namespace to probe in (unshare needs CAP_SYS_ADMIN)"
            ),
        "{first}"
    );

    // Every frame sent, counted by XDP, received by the socket, in one
    // record per flow with the frames of each direction.
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["xdp"]["all"]["packets"], FRAMES, "{s}");
    assert_eq!(s["xdp"]["redirected"]["packets"], FRAMES, "{s}");
    assert_eq!(s["rx_packets"], FRAMES, "{s}");
    assert_eq!(s["flows_created"], u64::from(FLOWS), "{s}");
    assert_eq!(s["records_dropped"], 0, "{s}");
    let eve = logs.join("eve.json");
    let meta = std::fs::metadata(&eve).unwrap();
    assert_eq!(meta.uid(), SERVICE_UID, "written by the service's user");
    assert_eq!(
        meta.mode() & 0o777,
        0o666 & !u32::from_str_radix(&umask, 8).unwrap(),
        "created under the unit's umask"
    );
    let mut seen: HashMap<(IpAddr, u16, IpAddr, u16), (u64, u64)> = HashMap::new();
    for line in std::fs::read_to_string(&eve).unwrap().lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        if r["event_type"] != "flow" {
            continue;
        }
        let key = (
            r["src_ip"].as_str().unwrap().parse().unwrap(),
            r["src_port"].as_u64().unwrap() as u16,
            r["dest_ip"].as_str().unwrap().parse().unwrap(),
            r["dest_port"].as_u64().unwrap() as u16,
        );
        let pkts = (
            r["flow"]["pkts_toserver"].as_u64().unwrap(),
            r["flow"]["pkts_toclient"].as_u64().unwrap(),
        );
        assert!(seen.insert(key, pkts).is_none(), "{key:?} written twice");
    }
    assert_eq!(seen.len(), flows.len());
    for f in &flows {
        assert_eq!(
            seen.get(&(f.a, f.a_port, f.b, f.b_port)),
            Some(&(f.frames_ab, f.frames_ba)),
            "{f:?}"
        );
    }
}

/// `/proc/PID/status`'s hex mask of a set of capability names.
fn capability_mask(set: &BTreeSet<String>) -> String {
    let bit = |name: &str| match name {
        "CAP_NET_ADMIN" => 12,
        "CAP_NET_RAW" => 13,
        "CAP_IPC_LOCK" => 14,
        "CAP_PERFMON" => 38,
        "CAP_BPF" => 39,
        other => panic!("no bit known for {other}"),
    };
    format!("{:016x}", set.iter().fold(0u64, |m, c| m | 1 << bit(c)))
}

fn xdp_attached(bed: &TestBed) -> bool {
    let o = Command::new("ip")
        .args(["-n", &bed.cap_ns, "link", "show", "dev", &bed.cap_if])
        .output()
        .unwrap();
    text(&o.stdout).contains("xdp")
}

/// Sends SIGTERM to the capture when dropped, also when an assertion fails
/// first (the process is then reaped with the test's).
struct Stopper(u32);

impl Drop for Stopper {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.0 as i32, libc::SIGTERM) };
    }
}
