//! `redwarden check` over a userDir of 20 000 files shaped like a real node_modules, side by side
//! in one run with `find USERDIR -perm /o+w`: one full stat walk, the practical floor.
//! Prints both medians and the ratio; the target is redwarden ≤ 1.5× find.
//!
//! Run: `cargo bench --bench check_walk` (`-- --files N --runs N` to change the shape).

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TARGET_RATIO: f64 = 1.5;

/// Lays out `files` files the way npm does: packages with package.json, lib/ and dist/ trees,
/// README/LICENSE, nested node_modules for some, and .bin links.
fn node_modules(dir: &Path, files: usize) -> usize {
    let mut made = 0;
    let mut package = 0;
    while made < files {
        let pkg = dir.join(format!("node_modules/pkg-{package}"));
        let nested = package % 7 == 0;
        let base = if nested {
            pkg.join(format!("node_modules/dep-{package}"))
        } else {
            pkg.clone()
        };
        for sub in ["lib/util", "dist/esm", "dist/cjs"] {
            std::fs::create_dir_all(base.join(sub)).unwrap();
        }
        for name in ["package.json", "README.md", "LICENSE"] {
            std::fs::write(base.join(name), "{}\n").unwrap();
            made += 1;
        }
        for i in 0..9 {
            for sub in ["lib", "lib/util", "dist/esm", "dist/cjs"] {
                if i < 3 || sub == "lib" {
                    std::fs::write(
                        base.join(format!("{sub}/m{i}.js")),
                        "module.exports = {};\n",
                    )
                    .unwrap();
                    made += 1;
                }
            }
        }
        std::fs::create_dir_all(dir.join("node_modules/.bin")).unwrap();
        let _ = symlink(
            format!("../pkg-{package}/lib/m0.js"),
            dir.join(format!("node_modules/.bin/pkg-{package}")),
        );
        package += 1;
    }
    made
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time(runs: usize, mut command: impl FnMut() -> Command) -> Duration {
    let mut run = || {
        let start = Instant::now();
        let status = command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        let elapsed = start.elapsed();
        assert!(
            matches!(status.code(), Some(0 | 1)),
            "benchmarked command failed: {status}"
        );
        elapsed
    };
    run(); // warm the page and dentry caches for both sides alike
    median((0..runs).map(|_| run()).collect())
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let files = arg("--files", 20_000);
    let runs = arg("--runs", 15);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    // The service user is whoever runs the bench, so the tree is compliant and both sides only
    // walk: the comparison is the walk, not the report of 20 000 findings.
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/passwd"), format!("root:x:0:0::/root:/bin/sh\nnodered:x:{uid}:{gid}::/var/lib/node-red:/usr/sbin/nologin\n")).unwrap();
    std::fs::write(
        root.join("etc/group"),
        format!("root:x:0:\nnodered:x:{gid}:\n"),
    )
    .unwrap();
    let user_dir = root.join("var/lib/node-red");
    std::fs::create_dir_all(&user_dir).unwrap();
    let made = node_modules(&user_dir, files);
    Command::new("chmod")
        .args(["-R", "go-w", "--"])
        .arg(&user_dir)
        .status()
        .unwrap();
    Command::new("chmod")
        .arg("0750")
        .arg(&user_dir)
        .status()
        .unwrap();

    let find = time(runs, || {
        let mut c = Command::new("find");
        c.arg(&user_dir).args(["-perm", "/o+w"]);
        c
    });
    let redwarden = time(runs, || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_redwarden"));
        c.arg("--root").arg(root).args(["--json", "check"]);
        c
    });
    let ratio = redwarden.as_secs_f64() / find.as_secs_f64();
    println!("check_walk: {made} files, median of {runs} runs each");
    println!(
        "  find USERDIR -perm /o+w   {:>8.2} ms",
        find.as_secs_f64() * 1e3
    );
    println!(
        "  redwarden check           {:>8.2} ms",
        redwarden.as_secs_f64() * 1e3
    );
    println!(
        "  ratio redwarden/find      {ratio:>8.2}   (target <= {TARGET_RATIO}: {})",
        if ratio <= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        }
    );
}
