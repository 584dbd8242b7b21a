//! Fifty `vardr-init certs` at once on one bundle path, with different inputs and with the same
//! ones, while a reader keeps reading it: every run succeeds, no read is ever torn, and no
//! temporary file is left behind.
//! The behaviour pinned here is the Certificates section of the contract (docs/contract.md).

mod common;

use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use common::certs::{Env, make_dir};
use common::pki::{self, Ca, Cert};
use common::{Finished, finish};

/// What a reader saw of the target while runs raced on it.
struct Reads {
    absent: usize,
    complete: usize,
    bad: Vec<String>,
}

/// Runs `vardr-init certs` once per certs dir in `dirs`, all at once on `env.bundle`, while a
/// reader keeps reading the target and checks every read: absent, or the system bundle followed
/// by exactly `per_run` well-formed custom certificates.
fn race(env: &Env, dirs: &[PathBuf], per_run: usize) -> (Vec<Finished>, Reads) {
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, bundle) = (Arc::clone(&stop), env.bundle.clone());
        // What the bundle begins with: the system bundle's certificates, re-encoded.
        let system: Vec<u8> = pki::certificates_in(&env.system_bytes)
            .iter()
            .flat_map(|der| pki::pem("CERTIFICATE", der).into_bytes())
            .collect();
        thread::spawn(move || {
            let mut reads = Reads {
                absent: 0,
                complete: 0,
                bad: Vec::new(),
            };
            while !stop.load(Ordering::Relaxed) {
                match fs::read(&bundle) {
                    Err(e) if e.kind() == ErrorKind::NotFound => reads.absent += 1,
                    Err(e) => reads.bad.push(format!("read error: {e}")),
                    Ok(bytes) => {
                        let custom = bytes
                            .strip_prefix(system.as_slice())
                            .ok_or_else(|| format!("{} bytes, no system prefix", bytes.len()))
                            .and_then(pki::strict_certificates);
                        match custom {
                            Ok(ders) if ders.len() == per_run => reads.complete += 1,
                            Ok(ders) => reads
                                .bad
                                .push(format!("{} custom certificates", ders.len())),
                            Err(e) => reads.bad.push(e),
                        }
                    }
                }
            }
            reads
        })
    };
    let barrier = Arc::new(Barrier::new(dirs.len()));
    let finished = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = dirs
        .iter()
        .map(|dir| {
            let mut command = env.command(false);
            command.env("VARDR_CERTS_DIR", dir);
            let (barrier, finished) = (Arc::clone(&barrier), Arc::clone(&finished));
            thread::spawn(move || {
                barrier.wait();
                let run = finish(command);
                finished.lock().expect("lock").push(run);
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer thread");
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("reader thread");
    let finished = std::mem::take(&mut *finished.lock().expect("lock"));
    (finished, reads)
}

fn assert_never_torn(reads: &Reads) {
    assert!(
        reads.bad.is_empty(),
        "{} torn or wrong reads (of {}), first: {:?}",
        reads.bad.len(),
        reads.bad.len() + reads.complete + reads.absent,
        reads.bad.first()
    );
    assert!(reads.complete > 0, "the reader never saw a bundle");
}

/// Only the bundle, its cache and the Python hook are left beside it: no temporary files.
fn assert_nothing_left_beside(env: &Env) {
    let out = env.root.join("out");
    assert_eq!(
        common::certs::strays(&out, &[]),
        Vec::<String>::new(),
        "only the bundle, its cache and the Python hook are left behind"
    );
    assert!(out.join("bundle.pem.python/sitecustomize.py").is_file());
}

const RACERS: usize = 50;

/// 50 `vardr-init certs` at once on one target, each with its own inputs so each really writes,
/// while a reader keeps reading the target: every read is absent or a complete bundle. Each run
/// verifies its own new file before renaming it into place, so every run succeeds (the last
/// rename wins) and none leaves a temporary file behind.
#[test]
fn fifty_concurrent_runs_with_different_inputs_never_expose_a_torn_bundle() {
    let env = Env::with_system(pki::system_bundle(100).0);
    let inputs: Vec<(PathBuf, Vec<Vec<u8>>)> = (0..RACERS)
        .map(|i| {
            let dir = env.root.join(format!("certs-{i:02}"));
            make_dir(&dir);
            let cas: Vec<Cert> = (0..2)
                .map(|j| Ca::new(&format!("concurrent {i}.{j}")).cert)
                .collect();
            fs::write(dir.join("cas.pem"), cas[0].pem() + &cas[1].pem()).expect("write");
            (dir, cas.into_iter().map(|c| c.der).collect())
        })
        .collect();
    let dirs: Vec<PathBuf> = inputs.iter().map(|(dir, _)| dir.clone()).collect();
    let (finished, reads) = race(&env, &dirs, 2);

    for run in &finished {
        run.assert_code(0, "one of 50 concurrent runs");
    }
    assert_never_torn(&reads);
    assert_nothing_left_beside(&env);

    // Whatever cache the race left, each input set now gets its own certificates.
    for (i, (dir, ders)) in inputs.iter().enumerate() {
        let mut command = env.command(false);
        command.env("VARDR_CERTS_DIR", dir);
        finish(command).assert_code(0, "sequential run after the race");
        pki::assert_bundle(
            &env.bundle,
            &env.system_bytes,
            ders,
            &format!("input {i} after the race"),
        );
    }
}

/// 50 `vardr-init certs` at once with the same inputs (replicas sharing a volume): all succeed,
/// and no read of the target is ever torn.
#[test]
fn fifty_concurrent_runs_with_the_same_inputs_all_succeed() {
    let env = Env::with_system(pki::system_bundle(100).0);
    let cas: Vec<Cert> = (0..3)
        .map(|i| Ca::new(&format!("shared {i}")).cert)
        .collect();
    for (i, ca) in cas.iter().enumerate() {
        fs::write(env.certs.join(format!("ca{i}.pem")), ca.pem()).expect("write");
    }
    let (finished, reads) = race(&env, &vec![env.certs.clone(); RACERS], 3);
    for run in &finished {
        run.assert_code(0, "one of 50 runs with the same inputs");
    }
    assert_never_torn(&reads);
    assert_nothing_left_beside(&env);
    let ders: Vec<Vec<u8>> = cas.into_iter().map(|c| c.der).collect();
    pki::assert_bundle(&env.bundle, &env.system_bytes, &ders, "after the race");
}
