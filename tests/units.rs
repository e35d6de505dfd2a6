//! The generated units, judged by systemd's own tools: `systemd-analyze verify` accepts them and
//! `systemd-analyze security --offline=yes` scores each hardware profile under its target.

use std::path::Path;
use std::process::Command;

/// (hardware list, the highest acceptable exposure as systemd's 0–100 integer: 10 = "1.0")
const TARGETS: &[(&str, u32)] = &[
    ("none", 10),
    ("gpio,serial", 15),
    ("gpio", 15),
    ("serial", 15),
    ("i2c,spi", 15),
    ("camera", 15),
    ("gpio,serial,i2c,spi,camera,input,bluetooth,can", 20),
];

fn systemd_analyze() -> bool {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIP units: systemd-analyze is not installed (apt-get install systemd)");
    }
    found
}

fn render(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_redwarden"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn score(dir: &Path, name: &str, text: &str) -> (u32, String) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = stdout.lines().last().unwrap_or_default();
    let value = last
        .split_whitespace()
        .find_map(|w| w.parse::<f64>().ok())
        .unwrap_or_else(|| {
            panic!(
                "no score in {last:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    ((value * 10.0).round() as u32, stdout)
}

/// What `systemd-analyze verify` says of `path` about the units named `about` (it also speaks
/// of the host's own units, which are not judged here).
fn verify(path: &Path, about: &str) -> Vec<String> {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(about))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_hardware_profile_scores_under_its_target() {
    if !systemd_analyze() {
        return;
    }
    for (hardware, target) in TARGETS {
        let dir = tempfile::tempdir().unwrap();
        // verify checks that ExecStart's program exists: point it at the binary under test.
        let unit = render(&["unit", "--hardware", hardware]).replace(
            "ExecStart=/usr/bin/redwarden run",
            &format!("ExecStart={} run", env!("CARGO_BIN_EXE_redwarden")),
        );
        let (exposure, report) = score(dir.path(), "redwarden.service", &unit);
        println!(
            "redwarden.service --hardware {hardware}: {:.1} (target <= {:.1})",
            exposure as f64 / 10.0,
            *target as f64 / 10.0
        );
        assert!(
            exposure <= *target,
            "{hardware}: {exposure} > {target}\n{report}"
        );
        // The official unit, with the drop-in, is judged as systemd merges them.
        let complaints = verify(&dir.path().join("redwarden.service"), "redwarden.service");
        assert!(
            complaints.is_empty(),
            "{hardware}: systemd-analyze verify: {complaints:?}"
        );
    }
}

#[test]
fn the_stock_installer_unit_scores_unsafe_and_the_drop_in_fixes_it() {
    if !systemd_analyze() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stock = "[Unit]\nDescription=Node-RED graphical event wiring tool\nWants=network.target\n\n[Service]\nType=simple\nUser=pi\nGroup=pi\nWorkingDirectory=/home/pi\nEnvironment=\"NODE_OPTIONS=--max_old_space_size=512\"\nExecStart=/usr/bin/env node-red-pi $NODE_OPTIONS -- $NODE_RED_OPTIONS\nKillSignal=SIGINT\nRestart=on-failure\nRestartSec=20\nSyslogIdentifier=Node-RED\n\n[Install]\nWantedBy=multi-user.target\n";
    let (before, _) = score(dir.path(), "nodered.service", stock);
    assert!(
        before >= 90,
        "the stock unit scored {before}, expected UNSAFE (>= 9.0)"
    );
    let drop_in = render(&["unit", "--drop-in"]);
    // systemd-analyze reads a unit file, not drop-ins, so the merged unit is judged: the drop-in's
    // [Service] lines appended to the stock [Service] section, as systemd applies them.
    let merged = stock.replace(
        "\n[Install]",
        &format!(
            "{}\n[Install]",
            drop_in.split("[Service]\n").nth(1).unwrap()
        ),
    );
    let (after, report) = score(dir.path(), "nodered.service", &merged);
    println!(
        "nodered.service: stock {:.1}, with the drop-in {:.1}",
        before as f64 / 10.0,
        after as f64 / 10.0
    );
    assert!(after <= 10, "with the drop-in: {after}\n{report}");
}

#[test]
fn the_front_door_scores_like_node_red_and_its_socket_verifies() {
    if !systemd_analyze() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("redwarden.toml");
    std::fs::write(
        &config,
        "[front]\nenabled = true\nlisten = \"[::]:443\"\nredirect_port = 80\n",
    )
    .unwrap();
    let written = dir.path().join("units");
    render(&[
        "--config",
        config.to_str().unwrap(),
        "unit",
        "--write",
        written.to_str().unwrap(),
    ]);
    let service = std::fs::read_to_string(written.join("redwarden-front.service"))
        .unwrap()
        .replace(
            "ExecStart=/usr/bin/redwarden-front",
            &format!("ExecStart={}", env!("CARGO_BIN_EXE_redwarden-front")),
        );
    assert!(service.contains("\nUser=redwarden-front\n"), "{service}");
    let (exposure, report) = score(dir.path(), "redwarden-front.service", &service);
    println!(
        "redwarden-front.service: {:.1} (target <= 1.0)",
        exposure as f64 / 10.0
    );
    assert!(exposure <= 10, "{exposure}\n{report}");
    let socket = std::fs::read_to_string(written.join("redwarden-front.socket")).unwrap();
    // The TLS socket first, the redirect second: the order `redwarden-front` takes them in.
    assert!(
        socket.contains("ListenStream=[::]:443\nListenStream=[::]:80\n"),
        "{socket}"
    );
    std::fs::write(dir.path().join("redwarden-front.socket"), &socket).unwrap();
    let complaints = verify(
        &dir.path().join("redwarden-front.socket"),
        "redwarden-front",
    );
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify: {complaints:?}"
    );
}
