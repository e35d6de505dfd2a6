//! Privileged tier, in a child process: `redwarden run` started as root outside systemd drops
//! to the service user through `privdrop::drop_to`. That changes the whole process for good, so
//! the test binary runs itself again as a child (no libtest harness: a harness would add the
//! thread that the drop refuses to leave behind) and judges the child's /proc status.

use std::process::Command;

use redwarden::supervise::privdrop::{drop_to, DropError, Identity};

const MODE: &str = "REDWARDEN_PRIVDROP_CHILD";
const NOBODY: u32 = 65534;
const DIALOUT: u32 = 20;

fn child(mode: &str) {
    let identity = Identity {
        uid: NOBODY,
        gid: NOBODY,
        groups: vec![DIALOUT],
    };
    match mode {
        "drop" => {
            drop_to(&identity).unwrap();
            // What the kernel says now, for the parent to judge independently of verify().
            print!("{}", std::fs::read_to_string("/proc/self/status").unwrap());
            let root_file = std::fs::OpenOptions::new().append(true).open("/etc/passwd");
            println!("WriteEtcPasswd:\t{}", root_file.is_ok());
        }
        "threaded" => {
            let _parked = std::thread::spawn(std::thread::park);
            match drop_to(&identity) {
                Err(DropError::Threads { threads }) => println!("Refused:\t{threads}"),
                other => println!("Refused:\tno ({other:?})"),
            }
            println!("StillRoot:\t{}", rustix::process::geteuid().is_root());
        }
        other => panic!("unknown {MODE} {other}"),
    }
}

fn run_child(mode: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(MODE, mode)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child {mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} in\n{status}"))
}

fn main() {
    if let Ok(mode) = std::env::var(MODE) {
        child(&mode);
        return;
    }
    if !rustix::process::geteuid().is_root() {
        println!("SKIP privdrop: dropping root needs root (CI runs it as root)");
        return;
    }
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    if field(&own, "Threads") != "1" {
        // qemu-user runs a thread of its own beside the emulated one, so a uid change would
        // not reach the whole process and drop_to rightly refuses: judged natively instead.
        println!(
            "SKIP privdrop: this process has {} threads before it starts any (an emulator's); drop_to refuses that by design",
            field(&own, "Threads")
        );
        return;
    }
    let status = run_child("drop");
    assert_eq!(field(&status, "Uid"), "65534\t65534\t65534\t65534");
    assert_eq!(field(&status, "Gid"), "65534\t65534\t65534\t65534");
    assert_eq!(field(&status, "Groups"), DIALOUT.to_string());
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(field(&status, set), "0000000000000000", "{set}");
    }
    assert_eq!(field(&status, "NoNewPrivs"), "1");
    assert_eq!(field(&status, "WriteEtcPasswd"), "false");
    println!("privdrop: root -> nobody with dialout, every capability set empty, no_new_privs: ok");

    let threaded = run_child("threaded");
    assert_eq!(
        field(&threaded, "Refused"),
        "2",
        "a second thread must stop the drop"
    );
    assert_eq!(
        field(&threaded, "StillRoot"),
        "true",
        "and nothing was half-done"
    );
    println!("privdrop: refuses a process with two threads, changing nothing: ok");
}
