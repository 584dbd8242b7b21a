//! The failures that must stop the default command before anything runs: no app found, no Python
//! on `PATH`, an unbalanced quote in `UVICORN_OPTS`, a port out of range. Each exits 2, names
//! what is wrong, writes no bundle and starts no Python.
//!
//! A fake `python3` only records that it was started, so "nothing was started" is checked, not
//! assumed.

mod common;

use common::app::{World, example};
use common::{Finished, Mode, finish};

/// Exit 2, and neither the bundle nor a Python process came of it.
fn assert_nothing_started(world: &World, done: &Finished, needles: &[&str]) {
    done.assert_code(2, "nothing may start");
    for needle in needles {
        assert!(
            done.stderr.contains(needle),
            "{needle:?} missing: {}",
            done.describe()
        );
    }
    assert!(!done.stderr.contains("Running"), "{}", done.describe());
    assert!(!world.python_started(), "python3 was started");
    assert!(world.out_dir_is_empty(), "the bundle was written");
}

#[test]
fn no_app_found_exits_2_naming_every_path_tried_and_app_module() {
    let world = World::fake_python();
    world.add_ca();
    let app_dir = world.tmp.path().join("app");
    std::fs::create_dir(&app_dir).expect("mkdir app");
    let done = finish(world.command(Mode::Subreaper, &app_dir, &[]));
    let tried: Vec<String> = vardr_init::app::discover::CANDIDATES
        .iter()
        .map(|file| app_dir.join(file).display().to_string())
        .collect();
    let mut needles: Vec<&str> = tried.iter().map(String::as_str).collect();
    needles.push("APP_MODULE");
    assert_nothing_started(&world, &done, &needles);
}

#[test]
fn no_python_on_path_exits_2() {
    let world = World::no_python();
    world.add_ca();
    let done = finish(world.command(Mode::Subreaper, &example("basic"), &[]));
    assert_nothing_started(&world, &done, &["python3", "PATH"]);
}

#[test]
fn an_unbalanced_quote_in_uvicorn_opts_exits_2_naming_it() {
    let world = World::fake_python();
    world.add_ca();
    let mut command = world.command(Mode::Subreaper, &example("basic"), &[]);
    command.env("UVICORN_OPTS", r#"--root-path "/my api"#);
    assert_nothing_started(&world, &finish(command), &["UVICORN_OPTS"]);
}

#[test]
fn port_out_of_range_exits_2_naming_it() {
    let world = World::fake_python();
    world.add_ca();
    let mut command = world.command(Mode::Subreaper, &example("basic"), &[]);
    command.env("PORT", "70000");
    assert_nothing_started(&world, &finish(command), &["PORT", "70000"]);
}
