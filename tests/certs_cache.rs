//! The cache beside the bundle: what decides the output is hashed, so a renamed input, a changed
//! system bundle and a damaged cache file each make the next run build again. The cache over the
//! whole fixture matrix (a hit, changed bytes, a new CA, a damaged bundle) is
//! `all_fixtures_in_one_directory` in tests/certs_inputs.rs.
//! The behaviour pinned here is the Certificates section of the contract (docs/contract.md).

mod common;

use std::fs;

use common::certs::Env;
use common::pki::{self, Ca};
use common::summary;

/// What decides the output is hashed: a renamed input, a changed system bundle and a damaged cache
/// file each make the next run build again, with the right bundle.
#[test]
fn the_cache_notices_renames_a_changed_system_bundle_and_a_damaged_cache() {
    let env = Env::new();
    let (a, b) = (Ca::new("cache a").cert, Ca::new("cache b").cert);
    fs::write(env.certs.join("a.pem"), a.pem()).expect("write");
    fs::write(env.certs.join("b.pem"), b.pem()).expect("write");
    let action = |what: &str| {
        let run = env.run();
        run.assert_code(0, what);
        summary(&run, what)
    };
    assert_eq!(action("first")["action"], "built");
    assert_eq!(action("unchanged")["action"], "reused");

    // Same bytes under other names: the order (and the results' keys) change.
    fs::rename(env.certs.join("a.pem"), env.certs.join("c.pem")).expect("rename");
    let renamed = action("after a rename");
    assert_eq!(renamed["action"], "built", "{renamed}");
    assert_eq!(renamed["results"]["c.pem"], "SUCCESS", "{renamed}");
    let order = [b.der.clone(), a.der.clone()];
    pki::assert_bundle(&env.bundle, &env.system_bytes, &order, "after a rename");

    // A new system bundle, custom inputs untouched.
    let (new_system, _) = pki::system_bundle(3);
    fs::write(&env.system, &new_system).expect("write the system bundle");
    let rebuilt = action("after a system bundle change");
    assert_eq!(rebuilt["action"], "built", "{rebuilt}");
    assert_eq!(rebuilt["system_certificates"], 3, "{rebuilt}");
    pki::assert_bundle(&env.bundle, &new_system, &order, "new system bundle");
    assert_eq!(action("unchanged again")["action"], "reused");

    // A damaged cache file is a miss, not an error.
    fs::write(env.cache(), "not a digest\n").expect("damage the cache");
    assert_eq!(action("after damaging the cache")["action"], "built");
    pki::assert_bundle(&env.bundle, &new_system, &order, "after a damaged cache");
}
