//! The generator shim (`sited __generator ...`), run as the real binary: when its parent
//! thread dies (the daemon killed outright) the parent-death signal reaches the shim,
//! which takes the generator's whole group with it, grandchildren included.

use std::process::{Command, Stdio};

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .is_some_and(|i| !matches!(&stat[i + 2..i + 3], "Z" | "X"))
    })
}

#[test]
fn s30_a_generators_children_die_with_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("grandchild");
    let script = format!(
        "sleep 1000 & echo $! > {}.tmp; mv {0}.tmp {0}; wait",
        pid_file.display()
    );
    // Spawned as the daemon spawns it, from a thread that ends once the generator's
    // child is up: on Linux the parent-death signal fires when the spawning thread exits.
    let spawner = std::thread::spawn({
        let pid_file = pid_file.clone();
        move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_sited"));
            command
                .args(["__generator", "sh", "-c", &script])
                .stdin(Stdio::null());
            sited::generator::child::supervised(&mut command, true);
            let child = command.spawn().unwrap();
            assert!(sited_tests::wait_until(sited_tests::DEADLINE, || pid_file.exists()));
            child
        }
    });
    let mut child = spawner.join().unwrap();
    let grandchild: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        sited_tests::wait_until(sited_tests::DEADLINE, || !alive(grandchild)
            && !alive(child.id() as i32)),
        "the generator's grandchild outlived its daemon"
    );
    assert!(!child.wait().unwrap().success());
}
